/**
 * One-shot views of the lock for status commands and operators: `inspectLock` and `breakStaleLock`.
 *
 * Unlike a waiter, a one-shot caller has no history of observations, so an expired heartbeat is judged by
 * the filesystem's clock alone (journal/LOCK.md §5.3): the age of the lock's newest mtime against a probe
 * file's mtime. Proofs of death are the same as a waiter's.
 */
import { ChangetrailError, type LockHolderSummary } from '../errors.js';
import { claimStaleLock, sweepLockGarbage } from './lock-claim.js';
import { defaultLockClock, type LockClock } from './lock-clock.js';
import { errnoOf, lockPaths, readFilesystemNowNs } from './lock-files.js';
import {
  creationAgeMs, effectiveStaleMs, heartbeatAgeMs, observeLock, proveOwnerGone, summarizeHolder,
  type LockObservation, type LockStaleReason, type OwnerState,
} from './lock-observe.js';
import type { LockOwner } from './lock-owner.js';
import { readSelfIdentity } from './process-identity.js';

/** Default stale time (ms): a holder whose heartbeat is older than this may be replaced. */
export const DEFAULT_STALE_MS = 10_000;

/** Why a lock was not broken (`LOCK_NOT_STALE.details.reason`). */
export type LockNotStaleReason = 'alive' | 'young' | 'unknown-protocol' | 'changed' | 'breaking';

/** The holder as recorded in a valid `owner.json`. */
export type LockHolder = LockHolderSummary & Omit<LockOwner, 'ownerId' | 'host' | 'pid'>;

/** What `inspectLock` sees. */
export interface LockInspection {
  /** The recorded owner, or null when `owner.json` is missing, malformed or of an unknown protocol. */
  holder: LockHolder | null;
  ownerState: OwnerState;
  /** True when `owner.json` is missing or malformed (never for an unknown protocol). */
  malformed: boolean;
  /** The protocol number of `owner.json`, when it has one. */
  protocol: number | null;
  /** Since the lock directory was created, filesystem clock (ms); null if the filesystem has no birth time. */
  ageMs: number | null;
  /** Since the last heartbeat (newest mtime of the directory and `owner.json`), filesystem clock (ms). */
  heartbeatAgeMs: number;
  /** True when a takeover is allowed now. */
  stale: boolean;
  staleReason: LockStaleReason | null;
  /** When not stale: why not. */
  liveReason: Exclude<LockNotStaleReason, 'changed' | 'breaking'> | null;
}

/** Options of {@link inspectLock}. */
export interface InspectLockOptions {
  /** Stale time to apply (ms, default 10 000); the holder's own, if larger, wins. */
  staleMs?: number;
  /** Clocks (tests). The filesystem's clock is always read from a probe file. */
  clock?: LockClock;
}

/**
 * Describes the admission lock of a journal directory, or returns null when nobody holds it.
 *
 * `ageMs` and `heartbeatAgeMs` are measured in the filesystem's clock (a probe file's mtime); if the
 * directory is read-only the local clock stands in. `stale` is true when the holder is provably gone
 * (`staleReason` `dead-pid`, `pid-reused`, `rebooted`) or its heartbeat is older than the stale time
 * (`expired`); a lock of an unknown protocol version is never stale.
 *
 * @throws ChangetrailError IO_ERROR.
 * @example
 * ```ts
 * const lock = await inspectLock('/srv/app.db.changes');
 * if (lock?.stale) console.log(`held by dead ${lock.holder?.ownerId}`);
 * ```
 */
export async function inspectLock(journalDir: string, options: InspectLockOptions = {}): Promise<LockInspection | null> {
  if (typeof journalDir !== 'string' || journalDir.length === 0) throw new TypeError('inspectLock: journalDir must be a non-empty string');
  const staleMs = validateStaleMs(options.staleMs ?? DEFAULT_STALE_MS, 'inspectLock');
  const observation = observeLock(lockPaths(journalDir));
  if (observation === null) return null;
  return describe(observation, staleMs, readFilesystemNowOrClock(journalDir, options.clock ?? defaultLockClock()));
}

/**
 * Removes the admission lock if it is provably stale (see {@link inspectLock}), with the same
 * rename-claim a waiter uses, and returns what it removed; returns null when there was no lock.
 *
 * @throws ChangetrailError LOCK_NOT_STALE `{ holder, reason }` (reason: `alive`, `young`,
 *   `unknown-protocol`, `changed` if it changed meanwhile, `breaking` if another process is taking it over);
 *   IO_ERROR.
 */
export async function breakStaleLock(journalDir: string, options: { staleMs?: number } = {}): Promise<LockInspection | null> {
  if (typeof journalDir !== 'string' || journalDir.length === 0) throw new TypeError('breakStaleLock: journalDir must be a non-empty string');
  const staleMs = validateStaleMs(options.staleMs ?? DEFAULT_STALE_MS, 'breakStaleLock');
  const paths = lockPaths(journalDir);
  const observation = observeLock(paths);
  if (observation === null) return null;
  const inspection = describe(observation, staleMs, readFilesystemNowNs(journalDir));
  if (!inspection.stale) throw notStale(inspection.holder, inspection.liveReason ?? 'alive');
  const limitMs = effectiveStaleMs(observation, staleMs);
  const outcome = claimStaleLock(paths, observation, limitMs);
  if (outcome === 'changed' || outcome === 'busy') throw notStale(inspection.holder, outcome === 'busy' ? 'breaking' : 'changed');
  sweepLockGarbage(paths, limitMs);
  if (outcome === 'grabbed-live') throw notStale(inspection.holder, 'changed');
  return inspection;
}

function notStale(holder: LockHolderSummary | null, reason: LockNotStaleReason): ChangetrailError<'LOCK_NOT_STALE'> {
  return new ChangetrailError('LOCK_NOT_STALE',
    `break lock: not provably stale (${reason}), held by ${holder?.ownerId ?? 'an unidentified holder'}`,
    { holder, reason });
}

function describe(observation: LockObservation, staleMs: number, fsNowNs: bigint): LockInspection {
  const limitMs = effectiveStaleMs(observation, staleMs);
  const beatAgeMs = heartbeatAgeMs(observation, fsNowNs);
  const proof = observation.ownerState === 'unknown-protocol' ? null : proveOwnerGone(observation, readSelfIdentity());
  const expired = observation.ownerState !== 'unknown-protocol' && beatAgeMs > limitMs;
  const staleReason: LockStaleReason | null = proof ?? (expired ? 'expired' : null);
  const summary = summarizeHolder(observation, fsNowNs);
  const owner = observation.owner;
  return {
    holder: summary === null || owner === null ? null : { ...owner, ...summary },
    ownerState: observation.ownerState,
    malformed: observation.ownerState === 'missing' || observation.ownerState === 'malformed',
    protocol: observation.protocol,
    ageMs: creationAgeMs(observation, fsNowNs),
    heartbeatAgeMs: beatAgeMs,
    stale: staleReason !== null,
    staleReason,
    liveReason: staleReason !== null ? null
      : observation.ownerState === 'unknown-protocol' ? 'unknown-protocol' : observation.owner === null ? 'young' : 'alive',
  };
}

/** The filesystem's now, or the local wall clock when the directory cannot be written (read-only status). */
function readFilesystemNowOrClock(journalDir: string, clock: LockClock): bigint {
  try {
    return readFilesystemNowNs(journalDir);
  } catch (error) {
    const errno = ChangetrailError.is(error, 'IO_ERROR') ? error.details.errno : errnoOf(error);
    if (errno !== 'EACCES' && errno !== 'EROFS' && errno !== 'EPERM') throw error;
    return BigInt(Math.round(clock.wallNow())) * 1_000_000n;
  }
}

/** Validates a stale time (API misuse is a RangeError). */
export function validateStaleMs(staleMs: number, what: string): number {
  if (typeof staleMs !== 'number' || !Number.isInteger(staleMs) || staleMs < 100) {
    throw new RangeError(`${what}: staleMs must be an integer ≥ 100, got ${String(staleMs)}`);
  }
  return staleMs;
}
