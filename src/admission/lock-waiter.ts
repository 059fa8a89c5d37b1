/**
 * The waiting side of `AdmissionLock.acquire`: queue, watch, judge, take over, enter (journal/LOCK.md §6).
 *
 * Each round: refresh the own ticket; find the live ticket just ahead (retiring dead ones); look at the
 * lock. A free lock is entered by the head of the queue, or by anyone once it has stayed free longer
 * than `HANDOFF_GRACE_MS` (a head whose event loop is busy must not stall everyone). A held lock is
 * judged, and taken over only with proof. Then sleep until the watched path changes or a short jittered
 * poll elapses: the head watches the lock directory (whose rename is the release), the others watch the
 * ticket ahead of them (whose removal is their turn).
 */
import { join } from 'node:path';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { claimStaleLock, sweepLockGarbage, type ClaimOutcome } from './lock-claim.js';
import type { LockClock } from './lock-clock.js';
import { readFilesystemNowNs, type LockPaths } from './lock-files.js';
import {
  effectiveStaleMs, heartbeatAgeMs, observeLock, proveOwnerGone, summarizeHolder, UnchangedTracker,
  type LockObservation, type LockStaleReason,
} from './lock-observe.js';
import { identityOf } from './lock-owner.js';
import { createTicket, listTickets, observeTicket, refreshTicket, removeTicket, type OwnTicket } from './lock-queue.js';
import { lockTestpoint } from './lock-testpoint.js';
import { jitteredMs, waitForChange } from './lock-wait.js';
import { proveProcessDead, type ProcessIdentity } from './process-identity.js';

/** Poll bounds: the fallback when a watch event is missed, and the cadence of staleness checks. */
export const POLL_MIN_MS = 50;
export const POLL_MAX_MS = 100;
/** How long a free lock is left to the head of the queue before others may enter (about 3 polls). */
export const HANDOFF_GRACE_MS = 250;

/**
 * On Windows a directory watch holds a handle that can make renaming the watched directory fail, and the
 * release *is* that rename; there the head watches the journal directory instead (noisier, never in the way).
 */
const HEAD_WATCHES_PARENT = process.platform === 'win32';

assert(POLL_MIN_MS > 0, 'polls are spaced');
assert(POLL_MIN_MS < POLL_MAX_MS, 'poll bounds are ordered');
assert(HANDOFF_GRACE_MS > POLL_MAX_MS, 'a free lock stays reserved for the head for more than one poll');

/** What the waiter needs from `acquire`. */
export interface WaiterContext<T> {
  paths: LockPaths;
  staleMs: number;
  heartbeatMs: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  clock: LockClock;
  self: ProcessIdentity;
  ticketText: string;
  startMono: number;
  /** Creates the lock, or returns null when it already exists. */
  tryCreate: () => T | null;
  /** Prepares everything `tryCreate` needs, so that a woken waiter does the least work. */
  prepare: () => void;
}

/** Waits in the queue until `tryCreate` succeeds, the timeout passes (LOCK_TIMEOUT) or `signal` aborts. */
export function waitForLock<T>(context: WaiterContext<T>): Promise<T> {
  return new LockWaiter(context).run();
}

class LockWaiter<T> {
  readonly #context: WaiterContext<T>;
  readonly #lockTracker = new UnchangedTracker();
  readonly #ticketTrackers = new Map<string, UnchangedTracker>();
  #ticket: OwnTicket | null = null;
  #isHead = false;
  #ticketRefreshedMono = 0;
  #freeSinceMono: number | null = null;
  #lastObservation: LockObservation | null = null;

  constructor(context: WaiterContext<T>) {
    this.#context = context;
  }

  async run(): Promise<T> {
    const { paths, signal } = this.#context;
    try {
      this.#joinQueue();
      this.#context.prepare();
      for (;;) {
        signal?.throwIfAborted();
        this.#refreshTicketIfDue();
        const predecessor = this.#findPredecessor();
        const observation = observeLock(paths);
        let watchPath = predecessor === null ? null : join(paths.queue, predecessor);
        if (observation === null) {
          if (this.#mayEnter(predecessor)) {
            const created = this.#context.tryCreate();
            if (created !== null) return created;
            continue;
          }
        } else {
          this.#freeSinceMono = null;
          this.#lastObservation = observation;
          const outcome = this.#takeOverIfStale(observation);
          if (outcome === 'claimed' || outcome === 'grabbed-live') continue;
          if (predecessor === null) watchPath = HEAD_WATCHES_PARENT ? paths.journalDir : paths.lock;
        }
        await this.#sleep(watchPath);
      }
    } finally {
      if (this.#ticket !== null) removeTicket(paths.queue, this.#ticket.name);
    }
  }

  async #sleep(watchPath: string | null): Promise<void> {
    const { clock, timeoutMs, startMono, signal, heartbeatMs } = this.#context;
    const now = clock.monoNow();
    const remainingMs = timeoutMs - (now - startMono);
    if (remainingMs <= 0) throw this.#timeoutError(now - startMono);
    const untilRefreshMs = this.#ticketRefreshedMono + heartbeatMs - now;
    const wakeMs = Math.min(remainingMs, jitteredMs(POLL_MIN_MS, POLL_MAX_MS), Math.max(untilRefreshMs, 0));
    if (await waitForChange(watchPath, wakeMs, signal) === 'abort') signal?.throwIfAborted();
  }

  #joinQueue(): void {
    const { paths, ticketText, clock } = this.#context;
    this.#isHead = false;
    this.#ticket = createTicket(paths.queue, ticketText);
    this.#ticketRefreshedMono = clock.monoNow();
  }

  #refreshTicketIfDue(): void {
    const { ticketText, clock, heartbeatMs } = this.#context;
    const now = clock.monoNow();
    if (this.#ticket === null || now - this.#ticketRefreshedMono < heartbeatMs) return;
    if (!refreshTicket(this.#ticket, ticketText)) this.#joinQueue();
    this.#ticketRefreshedMono = now;
  }

  /**
   * The nearest live ticket ahead of ours (retiring stale ones on the way), or null when we are the head.
   * Once the head, always the head: later tickets get larger numbers (until our ticket is lost, when
   * `#refreshTicketIfDue` queues us again), so the queue need not be read again.
   */
  #findPredecessor(): string | null {
    if (this.#isHead) return null;
    const { paths } = this.#context;
    let names = listTickets(paths.queue);
    if (this.#ticket === null || !names.includes(this.#ticket.name)) {
      this.#joinQueue();
      names = listTickets(paths.queue);
    }
    this.#forgetTrackersExcept(names);
    for (let index = names.indexOf(this.#ticket?.name ?? '') - 1; index >= 0; index -= 1) {
      const name = names[index] as string;
      if (!this.#isTicketStale(name)) return name;
      removeTicket(paths.queue, name);
    }
    this.#isHead = true;
    return null;
  }

  /** A ticket is retired when its owner is provably dead, or when this waiter saw it unrefreshed too long. */
  #isTicketStale(name: string): boolean {
    const { paths, self, staleMs, clock } = this.#context;
    const ticket = observeTicket(paths.queue, name);
    if (ticket === null) return true;
    const value = ticket.parse.kind === 'valid' ? ticket.parse.value : null;
    if (value !== null && proveProcessDead(identityOf(value), self) !== null) return true;
    let tracker = this.#ticketTrackers.get(name);
    if (tracker === undefined) this.#ticketTrackers.set(name, tracker = new UnchangedTracker());
    return tracker.observe(ticket.fingerprint, clock.monoNow()) > Math.max(staleMs, value?.staleMs ?? 0);
  }

  #forgetTrackersExcept(names: readonly string[]): void {
    for (const name of this.#ticketTrackers.keys()) {
      if (!names.includes(name)) this.#ticketTrackers.delete(name);
    }
  }

  /** The head enters a free lock at once; others only once it has stayed free for the grace period. */
  #mayEnter(predecessor: string | null): boolean {
    if (predecessor === null) return true;
    const now = this.#context.clock.monoNow();
    this.#freeSinceMono ??= now;
    return now - this.#freeSinceMono >= HANDOFF_GRACE_MS;
  }

  #takeOverIfStale(observation: LockObservation): ClaimOutcome | null {
    const { paths, staleMs } = this.#context;
    if (this.#judge(observation) === null) return null;
    lockTestpoint('after-stale-verdict');
    const limitMs = effectiveStaleMs(observation, staleMs);
    const outcome = claimStaleLock(paths, observation, limitMs);
    if (outcome === 'claimed' || outcome === 'grabbed-live') sweepLockGarbage(paths, limitMs);
    return outcome;
  }

  /** Proof of death, or an expired heartbeat by both the monotonic and the filesystem clock; else null. */
  #judge(observation: LockObservation): LockStaleReason | null {
    const { paths, self, staleMs, clock } = this.#context;
    if (observation.ownerState === 'unknown-protocol') return null;
    const proof = proveOwnerGone(observation, self);
    if (proof !== null) return proof;
    const limitMs = effectiveStaleMs(observation, staleMs);
    if (this.#lockTracker.observe(observation.fingerprint, clock.monoNow()) <= limitMs) return null;
    return heartbeatAgeMs(observation, readFilesystemNowNs(paths.journalDir)) > limitMs ? 'expired' : null;
  }

  #timeoutError(waitedMs: number): ChangetrailError<'LOCK_TIMEOUT'> {
    const { paths } = this.#context;
    const observation = observeLock(paths) ?? this.#lastObservation;
    let fsNowNs: bigint | null = null;
    try {
      fsNowNs = readFilesystemNowNs(paths.journalDir);
    } catch {
      // Only the holder's age would be missing from the error.
    }
    const holder = observation === null ? null : summarizeHolder(observation, fsNowNs);
    const why = observation === null ? 'other waiters were queued ahead'
      : `held by ${holder === null ? 'a holder without a valid owner.json' : holder.ownerId}`;
    return new ChangetrailError('LOCK_TIMEOUT', `acquire lock ${paths.lock}: timed out after ${Math.round(waitedMs)} ms (${why})`,
      { holder, waitedMs: Math.round(waitedMs) });
  }
}
