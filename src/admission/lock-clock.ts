/**
 * The two clocks of the admission lock, injectable so tests can skew and jump them.
 *
 * Neither clock is ever compared with another process's timestamps: a waiter judges a lock's age in the
 * filesystem's clock domain (the mtime of a probe file it just wrote, see `lock-files.ts`), and a holder
 * accounts for its own lease on the monotonic clock. The wall clock only stamps `createdAt`/`updatedAt`
 * into `owner.json` for people to read.
 */

/** The clocks the lock reads. Both return milliseconds. */
export interface LockClock {
  /** Wall-clock time since the Unix epoch; informational only (owner.json `createdAt`/`updatedAt`). */
  wallNow(): number;
  /** Monotonic time from an arbitrary origin: lease deadlines, observation windows, timeouts. */
  monoNow(): number;
}

/**
 * Environment variable adding a constant offset (ms, may be negative) to the default wall clock, so a test
 * can start a child process whose clock is skewed. The monotonic clock has no meaningful offset.
 */
export const TEST_CLOCK_OFFSET_ENV = 'CHANGETRAIL_TEST_CLOCK_OFFSET_MS';

/** The default clock: `Date.now()` (plus the test offset, if set) and `performance.now()`. */
export function defaultLockClock(): LockClock {
  const offsetMs = readOffsetMs(process.env[TEST_CLOCK_OFFSET_ENV]);
  return {
    wallNow: () => Date.now() + offsetMs,
    monoNow: () => performance.now(),
  };
}

function readOffsetMs(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const offsetMs = Number(value);
  if (!Number.isFinite(offsetMs)) throw new RangeError(`${TEST_CLOCK_OFFSET_ENV} must be a finite number of ms, got ${value}`);
  return offsetMs;
}
