/**
 * The cross-process admission lock: a directory `<journalDir>/lock/` holding `owner.json`, kept alive by
 * a heartbeat, taken over only with proof, and handed off fairly through a ticket queue. The normative
 * protocol, which another language can implement compatibly, is `journal/LOCK.md`.
 *
 * This lock is for liveness and diagnostics. No file-only lock gives mutual exclusion under unbounded
 * pauses (write-admission.md §3.9): the write path's database epoch, checked under SQLite's RESERVED lock,
 * is what fences a holder that lost the lock. Hence `isValid()` is a hint to stop early, not a guarantee.
 */
import { closeSync, openSync, constants } from 'node:fs';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { sweepLockGarbage } from './lock-claim.js';
import { defaultLockClock, type LockClock } from './lock-clock.js';
import { leaveLock, LockEntry, ownOwnerFileSize, rewriteOpenFile, type EnteredLock } from './lock-directory.js';
import { errnoOf, lockPaths, randomHex, readSmallFile, type LockPaths } from './lock-files.js';
import { DEFAULT_STALE_MS, validateStaleMs } from './lock-inspect.js';
import { formatLockOwner, formatLockTicket, formatOwnerId, LOCK_PROTOCOL, OWNER_BYTES_MAX, parseLockOwner, type LockOwner } from './lock-owner.js';
import { queueHasTickets, sweepPreparedTickets } from './lock-queue.js';
import { lockTestpoint } from './lock-testpoint.js';
import { waitForLock } from './lock-waiter.js';
import { readSelfIdentity } from './process-identity.js';

export { checkFilesystem, unsafeFilesystemName, UNSAFE_FILESYSTEM_TYPES, type CheckFilesystemOptions } from './filesystem.js';
export { breakStaleLock, inspectLock, DEFAULT_STALE_MS, type InspectLockOptions, type LockHolder, type LockInspection, type LockNotStaleReason } from './lock-inspect.js';
export { TEST_CLOCK_OFFSET_ENV, type LockClock } from './lock-clock.js';
export type { LockStaleReason, OwnerState } from './lock-observe.js';
export type { LockOwner } from './lock-owner.js';
export { LOCK_PROTOCOL } from './lock-owner.js';

/** Default time `acquire` waits before LOCK_TIMEOUT (ms). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * The holder considers its lease over this fraction of the stale time before waiters may take over, so it
 * stops admitting writes before anyone else can be admitted (timer lateness, coarse mtimes).
 */
const LEASE_MARGIN_RATIO = 0.2;
assert(LEASE_MARGIN_RATIO > 0, 'the holder stops before anyone may break its lock');
assert(LEASE_MARGIN_RATIO < 1 / 3, 'the lease outlives one missed heartbeat (period ≤ staleMs / 3)');
/** A holder sweeps `lock.stale-*`/`lock.spare-*`/`lock.probe-*` leftovers at most this often per journal directory. */
const SWEEP_INTERVAL_MS = 60_000;
const lastSweepMono = new Map<string, number>();

/** Options of {@link AdmissionLock.acquire}. */
export interface AdmissionLockOptions {
  /** The journal directory (`<db>.changes/`); it must exist. */
  journalDir: string;
  /** A holder whose heartbeat is older than this (ms) may be replaced. Default 10 000, minimum 100. */
  staleMs?: number;
  /** Heartbeat period (ms). Default `staleMs / 4`; at most `staleMs / 3`, so one missed beat is tolerated. */
  heartbeatMs?: number;
  /** How long to wait for the lock (ms) before LOCK_TIMEOUT. Default 30 000; 0 tries once. */
  timeoutMs?: number;
  /** Aborts waiting; `acquire` then rejects with `signal.reason` (an `AbortError` by default). */
  signal?: AbortSignal;
  /** Clocks (tests). */
  clock?: LockClock;
  /** Called once, from the heartbeat, when this holder finds its lock gone or replaced. */
  onCompromised?: (error: ChangetrailError<'LOCK_COMPROMISED'>) => void;
}

interface LockConfig {
  paths: LockPaths;
  staleMs: number;
  heartbeatMs: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  clock: LockClock;
  onCompromised: ((error: ChangetrailError<'LOCK_COMPROMISED'>) => void) | undefined;
}

/** Holder state. */
type HolderState = 'held' | 'compromised' | 'released';

/**
 * A held admission lock. Obtain one with {@link AdmissionLock.acquire}; give it up with `release()`.
 *
 * @example
 * ```ts
 * const lock = await AdmissionLock.acquire({ journalDir: '/srv/app.db.changes', timeoutMs: 5_000 });
 * try {
 *   if (!lock.isValid()) throw new Error('lease lost');
 *   // ... BEGIN IMMEDIATE, check the epoch, write, COMMIT ...
 * } finally {
 *   await lock.release();
 * }
 * ```
 */
export class AdmissionLock {
  /** This holder's random identity, `<host>:<pid>:<hex>`, as written in `owner.json`. */
  readonly ownerId: string;
  readonly #config: LockConfig;
  readonly #entered: EnteredLock;
  #owner: LockOwner;
  #leaseStartMono: number;
  #state: HolderState = 'held';
  #timer: NodeJS.Timeout | null = null;
  #releasing: Promise<void> | null = null;

  private constructor(config: LockConfig, entered: EnteredLock) {
    this.#config = config;
    this.#entered = entered;
    this.#owner = entered.owner;
    this.ownerId = entered.owner.ownerId;
    this.#leaseStartMono = entered.startMono;
    // The record was written before waiting; after a long wait, make `createdAt` tell the truth.
    if (entered.startMono - entered.preparedMono > config.heartbeatMs) {
      const now = new Date(config.clock.wallNow()).toISOString();
      this.#owner = { ...this.#owner, createdAt: now };
      this.#beatNow();
    }
    this.#scheduleBeat();
  }

  /**
   * Acquires the admission lock of `options.journalDir`, waiting (fairly, in arrival order) up to
   * `timeoutMs`. A stale holder is replaced when it is provably dead (same host and pid namespace, dead
   * pid; reused pid; other boot) or its heartbeat expired.
   *
   * @throws ChangetrailError LOCK_TIMEOUT `{ holder, waitedMs }`; IO_ERROR (e.g. the journal directory
   *   does not exist). Rejects with `signal.reason` when aborted. TypeError/RangeError for bad options.
   */
  static async acquire(options: AdmissionLockOptions): Promise<AdmissionLock> {
    const config = resolveOptions(options);
    config.signal?.throwIfAborted();
    const self = readSelfIdentity();
    const ownerId = formatOwnerId(self, randomHex(16));
    const { paths, clock, staleMs } = config;
    const makeOwner = (nowMs: number): LockOwner => ({
      protocol: LOCK_PROTOCOL, ownerId, ...self, mode: 'write', staleMs,
      createdAt: new Date(nowMs).toISOString(), updatedAt: new Date(nowMs).toISOString(),
    });
    const entry = new LockEntry(paths, makeOwner, clock);
    const startMono = clock.monoNow();
    let entered: EnteredLock;
    try {
      entered = (queueHasTickets(paths.queue) ? null : entry.tryEnter()) ?? await waitForLock({
        paths, staleMs, heartbeatMs: config.heartbeatMs, timeoutMs: config.timeoutMs, signal: config.signal, clock, self,
        ticketText: formatLockTicket({ protocol: LOCK_PROTOCOL, ...self, staleMs }),
        startMono, tryCreate: () => entry.tryEnter(), prepare: () => entry.prepare(),
      });
    } catch (error) {
      entry.abandon();
      throw error;
    }
    const lock = new AdmissionLock(config, entered);
    sweepIfDue(paths, staleMs, clock);
    lockTestpoint('after-acquire');
    return lock;
  }

  /**
   * True while this holder may admit writes: not released, not compromised, and its lease (the last
   * successful heartbeat plus `staleMs` minus a margin, on the monotonic clock) has not run out. A paused
   * process can be replaced right after this returns true; the database epoch is the real fence.
   */
  isValid(): boolean {
    if (this.#state !== 'held') return false;
    const { staleMs, clock } = this.#config;
    return clock.monoNow() - this.#leaseStartMono < staleMs * (1 - LEASE_MARGIN_RATIO);
  }

  /**
   * True when other acquirers are queued (one `readdir` of `lock.queue/`). A holder that keeps the lock
   * across consecutive writes should release it between writes while this is true, so waiters are served
   * in turn.
   */
  hasWaiters(): boolean {
    return queueHasTickets(this.#config.paths.queue);
  }

  /**
   * Heartbeats now (e.g. before a long write) and reports whether the lease was renewed. False when
   * released or compromised (the lock is gone or another process's), or when the write failed (an I/O
   * error; the lease then runs out unless a later beat succeeds).
   */
  async beat(): Promise<boolean> {
    return this.#beatNow();
  }

  /**
   * Gives the lock up: verifies that `owner.json` is still this holder's, then renames the directory to a
   * fresh `lock.spare-<hex>` (waking the next waiter), which this process reuses for its next acquisition.
   * Idempotent: later calls return the same promise. Never moves a successor's lock knowingly (see
   * journal/LOCK.md §12 for the one window); a compromised holder touches nothing.
   *
   * @throws ChangetrailError IO_ERROR (the lock then expires by heartbeat age).
   */
  release(): Promise<void> {
    this.#releasing ??= this.#releaseNow();
    return this.#releasing;
  }

  async #releaseNow(): Promise<void> {
    const wasHeld = this.#state === 'held';
    this.#state = 'released';
    this.#stopBeats();
    if (!wasHeld) return;
    lockTestpoint('before-release');
    leaveLock(this.#config.paths, this.#entered);
  }

  #scheduleBeat(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#beatNow();
      if (this.#state === 'held') this.#scheduleBeat();
    }, this.#config.heartbeatMs);
    this.#timer.unref();
  }

  #stopBeats(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * One heartbeat. Opens `owner.json` by path and checks, through the descriptor, that it is the very file
   * this holder wrote (inode and owner id); only then rewrites it in place, which bumps its mtime in the
   * filesystem's clock.
   * Writing through the verified descriptor means a beat can never land in a successor's lock, even if
   * the directory is replaced between the check and the write.
   */
  #beatNow(): boolean {
    if (this.#state !== 'held') return false;
    const { paths, clock } = this.#config;
    const startMono = clock.monoNow();
    let fd: number;
    try {
      fd = openSync(paths.owner, constants.O_RDWR | constants.O_NOFOLLOW);
    } catch (cause) {
      const code = errnoOf(cause);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') this.#compromise('lock-missing');
      return false;
    }
    try {
      const size = ownOwnerFileSize(fd, paths.owner, this.#entered);
      if (size === null) {
        this.#compromise('lock-foreign');
        return false;
      }
      lockTestpoint('before-beat-write');
      this.#owner = { ...this.#owner, updatedAt: new Date(clock.wallNow()).toISOString() };
      rewriteOpenFile(fd, paths.owner, formatLockOwner(this.#owner), size);
      this.#leaseStartMono = startMono;
      return true;
    } catch {
      // An I/O error (ENOSPC, EIO): the lease is not renewed and runs out unless a later beat succeeds.
      return false;
    } finally {
      closeSync(fd);
    }
  }

  #compromise(reason: 'lock-missing' | 'lock-foreign'): void {
    this.#state = 'compromised';
    this.#stopBeats();
    const currentHolder = this.#readCurrentHolder();
    const error = new ChangetrailError('LOCK_COMPROMISED',
      `heartbeat: admission lock ${this.#config.paths.lock} ${reason === 'lock-missing' ? 'is gone' : `now belongs to ${currentHolder ?? 'another holder'}`}`,
      { epoch: null, currentEpoch: null, currentHolder, ownerId: this.ownerId, reason });
    this.#config.onCompromised?.(error);
  }

  /** The owner id now at the lock path, for the report; null if none can be read. */
  #readCurrentHolder(): string | null {
    try {
      const current = readSmallFile(this.#config.paths.owner, OWNER_BYTES_MAX);
      const parse = current === null ? null : parseLockOwner(current.text);
      return parse?.kind === 'valid' ? parse.value.ownerId : null;
    } catch {
      return null;
    }
  }
}

function sweepIfDue(paths: LockPaths, staleMs: number, clock: LockClock): void {
  const now = clock.monoNow();
  const last = lastSweepMono.get(paths.journalDir);
  if (last !== undefined && now - last < SWEEP_INTERVAL_MS) return;
  lastSweepMono.set(paths.journalDir, now);
  sweepLockGarbage(paths, staleMs);
  sweepPreparedTickets(paths.queue, staleMs);
}

/**
 * Checks the lock's timings and fills in their defaults (RangeError for misuse). `openTrail` calls it too,
 * so options that could only fail at the first write fail at open.
 */
export function validateLockTimings(
  options: { staleMs?: number | undefined; heartbeatMs?: number | undefined; timeoutMs?: number | undefined }, what: string,
): { staleMs: number; heartbeatMs: number; timeoutMs: number } {
  const staleMs = validateStaleMs(options.staleMs ?? DEFAULT_STALE_MS, what);
  const heartbeatMs = options.heartbeatMs ?? Math.floor(staleMs / 4);
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 1 || heartbeatMs > staleMs / 3) {
    throw new RangeError(`${what}: heartbeatMs must be an integer in [1, staleMs / 3] (staleMs is ${staleMs}), got ${String(heartbeatMs)}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(`${what}: timeoutMs must be ≥ 0, got ${String(timeoutMs)}`);
  }
  return { staleMs, heartbeatMs, timeoutMs };
}

function resolveOptions(options: AdmissionLockOptions): LockConfig {
  if (typeof options !== 'object' || options === null) throw new TypeError('AdmissionLock.acquire: options must be an object');
  const { journalDir, signal, clock, onCompromised } = options;
  if (typeof journalDir !== 'string' || journalDir.length === 0) throw new TypeError('AdmissionLock.acquire: journalDir must be a non-empty string');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('AdmissionLock.acquire: signal must be an AbortSignal');
  if (clock !== undefined && (typeof clock.wallNow !== 'function' || typeof clock.monoNow !== 'function')) {
    throw new TypeError('AdmissionLock.acquire: clock must have wallNow() and monoNow()');
  }
  if (onCompromised !== undefined && typeof onCompromised !== 'function') throw new TypeError('AdmissionLock.acquire: onCompromised must be a function');
  const { staleMs, heartbeatMs, timeoutMs } = validateLockTimings(options, 'AdmissionLock.acquire');
  return Object.freeze({
    paths: lockPaths(journalDir), staleMs, heartbeatMs, timeoutMs, signal, clock: clock ?? defaultLockClock(), onCompromised,
  });
}
