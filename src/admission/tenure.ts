/**
 * The tenure policy of one process's admission lock: its tasks run one at a time (a FIFO queue that never
 * blocks the event loop), consecutive tasks keep the lock, and the lock is handed over once other processes
 * wait and this tenure has had its fair share, or when the process goes idle.
 */
import { AdmissionLock, validateLockTimings } from './lock.js';

/**
 * How long a process may keep the admission lock for consecutive writes while others wait. Handing over
 * after every write costs a 0.3-1 ms handoff per ~1.5 ms write; 25 ms amortises it over ~15 writes while
 * a waiter behind three others waits about 75 ms.
 */
export const FAIR_SHARE_MS = 25;
/**
 * With the default share, a tenure also lasts at least this many transactions (up to FAIR_SHARE_MAX_MS):
 * a handoff and the new holder's first write cost about two ordinary writes (measured under contention,
 * `npm run bench -- write`), so on a disk where a commit takes 10 ms a 25 ms share would spend a third of
 * the time handing over. Every process follows the same rule, so shares stay equal.
 */
export const TENURE_WRITES_MIN = 8;
export const FAIR_SHARE_MAX_MS = 100;
/**
 * How often queued tasks let the event loop turn. Consecutive tasks chain through resolved promises, so
 * without it no I/O callback runs during a tenure: the background segment fsyncs would report back only
 * when the tenure ends (and outbox rows would pile up until then: 100-150 rows for 4 processes, which the
 * next admission compares with the segments), and the heartbeat timer would not fire.
 */
const YIELD_INTERVAL_MS = 2;

/** How often a tenure past its fair share looks for waiting processes (see #shareUsedWithWaiters). */
const WAITER_CHECK_MS = 2;

export interface TenureOptions {
  staleMs?: number | undefined;
  heartbeatMs?: number | undefined;
  timeoutMs?: number | undefined;
  /**
   * How long the lock is kept for consecutive tasks while others wait. Default: FAIR_SHARE_MS and at least
   * TENURE_WRITES_MIN transactions, at most FAIR_SHARE_MAX_MS; given explicitly, exactly this long.
   */
  fairShareMs?: number | undefined;
  /** How long the lock is kept after the queue empties. Default 0 (released on the next tick). */
  idleReleaseMs?: number | undefined;
}

/** A held lock, and whether it was acquired for this call (so the caller's admission starts afresh). */
export interface Held {
  lock: AdmissionLock;
  fresh: boolean;
}

export class Tenure {
  readonly journalDir: string;
  readonly #options: TenureOptions;
  #lock: AdmissionLock | null = null;
  #startMs = 0;
  /** When queued tasks last let the event loop run (see #yieldIfDue). */
  #yieldedMs = 0;
  /** Transactions admitted in this tenure (calls of `hold`). */
  #holds = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #releaseTimer: NodeJS.Timeout | null = null;
  /** Whether the release timer, when it fires, releases (cleared when a task is queued in the meantime). */
  #releaseArmed = false;
  /** When the queue directory was last looked at for waiters. */
  #waitersCheckedMs = -Infinity;

  /** RangeError when the lock options are inconsistent (e.g. heartbeatMs above staleMs / 3). */
  constructor(journalDir: string, options: TenureOptions = {}, what = 'openTrail: lock') {
    validateLockTimings(options, what);
    this.journalDir = journalDir;
    this.#options = options;
  }

  /** The options AdmissionLock and inspectLock take (staleMs, heartbeatMs, timeoutMs), as given. */
  lockOptions(): { staleMs?: number; heartbeatMs?: number; timeoutMs?: number } {
    const { staleMs, heartbeatMs, timeoutMs } = this.#options;
    return { ...(staleMs === undefined ? {} : { staleMs }), ...(heartbeatMs === undefined ? {} : { heartbeatMs }), ...(timeoutMs === undefined ? {} : { timeoutMs }) };
  }

  /**
   * The lock this tenure holds if it is still valid and `keep` is true; otherwise the old one is released
   * and a new one acquired (`fresh`).
   */
  async hold(keep = true): Promise<Held> {
    if (keep && this.#lock !== null && this.#lock.isValid()) {
      this.#holds += 1;
      return { lock: this.#lock, fresh: false };
    }
    if (this.#lock !== null) await this.release();
    const lock = await this.acquire();
    this.#holds = 1;
    return { lock, fresh: true };
  }

  /** Acquires the lock and starts a tenure. */
  async acquire(): Promise<AdmissionLock> {
    this.#lock = await AdmissionLock.acquire({ journalDir: this.journalDir, ...this.lockOptions() });
    this.#startMs = performance.now();
    this.#yieldedMs = this.#startMs;
    this.#holds = 0;
    return this.#lock;
  }

  /** Releases the lock without waiting (after LOCK_COMPROMISED: the next task acquires afresh). */
  drop(): void {
    void this.release();
  }

  async release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = null;
    if (lock !== null) await lock.release().catch(() => undefined);
  }

  /** Serialises this process's tasks without blocking the event loop; releases the lock when idle. */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    this.#pending += 1;
    this.#clearReleaseTimer();
    const run = this.#queue.then(async () => {
      await this.#yieldIfDue();
      return task();
    });
    this.#queue = run.then(() => this.#settled(), () => this.#settled());
    return run;
  }

  /**
   * For a task that runs several transactions (a batch of group commits): between two of them, lets the
   * event loop run and hands the lock over if this tenure has had its fair share and others wait, as
   * between two tasks. The task's next transaction then holds the lock again (`hold`).
   */
  pause(): Promise<void> {
    return this.#yieldIfDue();
  }

  /**
   * Right after a transaction: hands the lock over at once if this tenure has had its fair share and
   * others wait, before the callers of its writes continue — their next writes queue behind the waiters
   * anyway, and the waiter need not wait for them and a turn of this process's event loop (0.1-2 ms on
   * the loaded test machine). The rename that releases the lock runs synchronously.
   */
  handOverIfDue(): void {
    if (this.#shareUsedWithWaiters()) void this.release();
  }

  /** After every queued task: releases the lock and then runs `after`. */
  close(after: () => void): Promise<void> {
    return this.#queue.then(async () => {
      this.#clearReleaseTimer();
      if (this.#releaseTimer !== null) clearTimeout(this.#releaseTimer);
      this.#releaseTimer = null;
      await this.release();
      after();
    });
  }

  /**
   * Between two queued tasks: lets the event loop turn every YIELD_INTERVAL_MS, and once this tenure has
   * had its fair share and other processes wait, hands the lock over even though more tasks are queued
   * here (a server with thousands of requests in flight must not starve other processes); the next task
   * then queues behind them, FIFO by ticket. Looks at the queue directory only once the share is used up.
   */
  async #yieldIfDue(): Promise<void> {
    if (this.#lock === null) return;
    const now = performance.now();
    if (now - this.#yieldedMs < YIELD_INTERVAL_MS) return;
    this.#yieldedMs = now;
    if (this.#shareUsedWithWaiters()) await this.release();
    await new Promise((resolve) => setImmediate(resolve));
  }

  #settled(): void {
    this.#pending -= 1;
    if (this.#pending > 0 || this.#lock === null) return;
    // Other processes are queued: once this tenure has had its fair share, hand the lock over, so a process
    // writing in a tight loop cannot starve them (its next write queues behind them, FIFO by ticket).
    // Within the share, consecutive writes keep the lock: a handoff costs 0.3-1 ms, a write about 1.5 ms.
    if (this.#shareUsedWithWaiters()) {
      this.#queue = this.#queue.then(() => this.release());
      return;
    }
    this.#armReleaseTimer();
  }

  /**
   * Whether this tenure has had its fair share and other processes wait. hasWaiters lists the queue
   * directory (a readdir: 20-40 µs on a busy machine), so it is looked at once per WAITER_CHECK_MS at
   * most, which delays a handover by that much at worst.
   */
  #shareUsedWithWaiters(): boolean {
    const now = performance.now();
    if (this.#lock === null || !this.#shareUsed(now - this.#startMs) || now - this.#waitersCheckedMs < WAITER_CHECK_MS) return false;
    this.#waitersCheckedMs = now;
    return this.#lock.hasWaiters();
  }

  #shareUsed(heldMs: number): boolean {
    const fairShareMs = this.#options.fairShareMs;
    if (fairShareMs !== undefined) return heldMs >= fairShareMs;
    return heldMs >= FAIR_SHARE_MS && (this.#holds >= TENURE_WRITES_MIN || heldMs >= FAIR_SHARE_MAX_MS);
  }

  /** One timer for the tenure, re-armed after each task (creating a timer per write cost about 12 µs). */
  #armReleaseTimer(): void {
    if (this.#releaseTimer !== null) {
      this.#releaseTimer.refresh();
      this.#releaseArmed = true;
      return;
    }
    this.#releaseTimer = setTimeout(() => {
      if (!this.#releaseArmed) return;
      this.#releaseArmed = false;
      if (this.#pending === 0) this.#queue = this.#queue.then(() => this.release());
    }, this.#options.idleReleaseMs ?? 0);
    this.#releaseTimer.unref();
    this.#releaseArmed = true;
  }

  #clearReleaseTimer(): void {
    this.#releaseArmed = false;
  }
}
