/**
 * Named crash and fault points, for tests that kill a real process at each step of a write or an apply.
 * `CHANGETRAIL_CRASH_AT=name:n` SIGKILLs the process the n-th time `name` is reached (no exit handlers
 * run, like a real crash). `CHANGETRAIL_PAUSE_AT=name:n` SIGSTOPs it there instead (a GC pause or a
 * stopped VM, resumed by SIGCONT from the test). `CHANGETRAIL_FAULT_AT=name:n:ERRNO` makes the n-th pass
 * throw an fs-style error with that code (once), to exercise I/O-error handling. All are read once at
 * load; with none set, a point costs one comparison. Each stage names its own points (src/write,
 * src/replica) and calls these.
 */
const crash = parse(process.env.CHANGETRAIL_CRASH_AT);
const pause = parse(process.env.CHANGETRAIL_PAUSE_AT);
const fault = parse(process.env.CHANGETRAIL_FAULT_AT);
const hits = new Map<string, number>();

interface PointSpec {
  name: string;
  hit: number;
  errno: string | undefined;
}

function parse(value: string | undefined): PointSpec | null {
  if (!value) return null;
  const [name, hit, errno] = value.split(':');
  return { name: name ?? '', hit: Number(hit ?? 1) || 1, errno };
}

/** SIGKILLs (or SIGSTOPs) the process at the configured pass of `name`. */
export function crashpointNamed(name: string): void {
  if (pause !== null && pause.name === name && count(`pause:${name}`) === pause.hit) process.kill(process.pid, 'SIGSTOP');
  if (crash === null || crash.name !== name) return;
  if (count(`crash:${name}`) === crash.hit) process.kill(process.pid, 'SIGKILL');
}

/** Throws an injected I/O error at the configured pass of `name`. */
export function faultpoint(name: string): void {
  if (fault === null || fault.name !== name) return;
  if (count(`fault:${name}`) === fault.hit) {
    throw Object.assign(new Error(`injected ${fault.errno ?? 'EIO'} at ${name}`), { code: fault.errno ?? 'EIO' });
  }
}

/**
 * Counts a pass of `name` and returns true when this is the pass to crash at, so the caller can do
 * damage first (tear a frame in half) and then call `crashNow()`.
 */
export function crashesHereNamed(name: string): boolean {
  return crash !== null && crash.name === name && count(`crash:${name}`) === crash.hit;
}

export function crashNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not stop the process');
}

function count(key: string): number {
  const n = (hits.get(key) ?? 0) + 1;
  hits.set(key, n);
  return n;
}
