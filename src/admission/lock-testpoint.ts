/**
 * Named points in the lock protocol where a test can park or kill a real process, to replay a chosen
 * interleaving deterministically (the technique of write-admission.md [A1], §8.4).
 *
 * `CHANGETRAIL_LOCK_TESTPOINT=<name>:<n>:park` makes the n-th pass of `<name>` write the point's name to
 * the file named by `CHANGETRAIL_LOCK_PARK_FILE` and then SIGSTOP the process; the test resumes it with
 * SIGCONT. `...:crash` SIGKILLs the process instead (no exit handlers run, like a real crash). Read once
 * at load; unset, a point costs one comparison. POSIX only (Windows has no SIGSTOP).
 */
import { writeFileSync } from 'node:fs';

/** Every named point, in protocol order. */
export const LOCK_TESTPOINTS = [
  'after-enter', 'after-acquire', 'after-stale-verdict', 'before-claim-rename', 'before-beat-write',
  'before-release', 'before-release-rename', 'after-release-rename',
] as const;

export type LockTestpoint = (typeof LOCK_TESTPOINTS)[number];

/** Environment variable selecting a point: `<name>:<n>:park|crash`. */
export const LOCK_TESTPOINT_ENV = 'CHANGETRAIL_LOCK_TESTPOINT';
/** Environment variable naming the file a parked process writes before stopping. */
export const LOCK_PARK_FILE_ENV = 'CHANGETRAIL_LOCK_PARK_FILE';

const spec = parseSpec(process.env[LOCK_TESTPOINT_ENV]);
let passes = 0;

function parseSpec(value: string | undefined): { name: string; hit: number; action: 'park' | 'crash' } | null {
  if (value === undefined || value === '') return null;
  const [name = '', hit = '1', action = 'park'] = value.split(':');
  if (action !== 'park' && action !== 'crash') throw new RangeError(`${LOCK_TESTPOINT_ENV}: action must be park or crash, got ${action}`);
  return { name, hit: Number(hit) || 1, action };
}

/** Parks or kills this process at the configured pass of `name`; otherwise does nothing. */
export function lockTestpoint(name: LockTestpoint): void {
  if (spec === null || spec.name !== name) return;
  passes += 1;
  if (passes !== spec.hit) return;
  if (spec.action === 'crash') process.kill(process.pid, 'SIGKILL');
  const parkFile = process.env[LOCK_PARK_FILE_ENV];
  if (parkFile !== undefined) writeFileSync(parkFile, `${name}\n`);
  process.kill(process.pid, 'SIGSTOP');
}
