/**
 * Who a process is, and proof that a recorded process is dead (write-admission.md §2.8, §5.9).
 *
 * A lock or queue ticket records its writer's host, pid, pid namespace, boot id and process start time.
 * Another process may call the writer dead only when it can prove it, never on a guess: the hosts must
 * match, and then a different boot id, or (in the same pid namespace) `kill(pid, 0)` failing with ESRCH,
 * or (in the same boot) a different start time for that pid. Everything else fails closed: the writer is
 * presumed alive and only the heartbeat age can retire its lock.
 */
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';

/** The identity fields recorded in `owner.json` and in queue tickets. */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /** Inode number of `/proc/self/ns/pid`, decimal; null where there is no /proc (non-Linux). */
  pidNamespace: string | null;
  /** `/proc/sys/kernel/random/boot_id`; null where unavailable. */
  bootId: string | null;
  /** Field 22 of `/proc/<pid>/stat` (clock ticks after boot), decimal; null where unavailable. */
  processStartTime: string | null;
}

/** Why a recorded process is provably gone. */
export type DeathProof = 'dead-pid' | 'pid-reused' | 'rebooted';

let selfIdentity: ProcessIdentity | undefined;

/** This process's identity, read once. */
export function readSelfIdentity(): ProcessIdentity {
  if (selfIdentity === undefined || selfIdentity.pid !== process.pid) {
    selfIdentity = {
      // An empty host name (seen in minimal containers) would make owner records invalid.
      host: hostname() || 'unknown-host',
      pid: process.pid,
      pidNamespace: readPidNamespace(),
      bootId: readBootId(),
      processStartTime: readProcessStartTime(process.pid),
    };
  }
  return selfIdentity;
}

function readPidNamespace(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    return String(statSync('/proc/self/ns/pid', { bigint: true }).ino);
  } catch {
    return null;
  }
}

function readBootId(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return bootId === '' ? null : bootId;
  } catch {
    return null;
  }
}

/**
 * The start time of `pid` as field 22 of `/proc/<pid>/stat`, or null. The command name (field 2) may hold
 * spaces and parentheses, so fields are counted after the last `)`.
 */
export function readProcessStartTime(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name, field 3 (state) is at index 0, so field 22 is at index 19.
  const startTime = fields[19];
  return startTime !== undefined && /^\d+$/.test(startTime) ? startTime : null;
}

/** `kill(pid, 0)`: ESRCH is dead, success or EPERM is alive, anything else is unknown. */
export function probeProcess(pid: number): 'alive' | 'dead' | 'unknown' {
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'dead';
    return code === 'EPERM' ? 'alive' : 'unknown';
  }
}

/**
 * Proof that the process `recorded` is gone, as seen from `self`, or null when it cannot be proven.
 * Never proves anything about another host.
 */
export function proveProcessDead(recorded: ProcessIdentity, self: ProcessIdentity): DeathProof | null {
  if (recorded.host !== self.host) return null;
  if (recorded.bootId !== null && self.bootId !== null && recorded.bootId !== self.bootId) return 'rebooted';
  if (!samePidNamespace(recorded, self)) return null;
  const liveness = probeProcess(recorded.pid);
  if (liveness === 'dead') return 'dead-pid';
  if (liveness === 'unknown' || !sameBoot(recorded, self) || recorded.processStartTime === null) return null;
  const startTime = cachedStartTime(recorded.pid);
  if (startTime === null) return null;
  return startTime === recorded.processStartTime ? null : 'pid-reused';
}

/**
 * Waiters ask about the same live holder on every wake-up, and generating `/proc/<pid>/stat` was the
 * largest single cost of a handoff (9% of its CPU). A start time read less than this long ago is reused:
 * a pid that died and was reused within that second is only proven so a second later (fail closed).
 */
const START_TIME_TTL_MS = 1_000;
const startTimes = new Map<number, { startTime: string | null; readAt: number }>();

function cachedStartTime(pid: number): string | null {
  const now = performance.now();
  const cached = startTimes.get(pid);
  if (cached !== undefined && now - cached.readAt < START_TIME_TTL_MS) return cached.startTime;
  if (startTimes.size > 64) startTimes.clear();
  const startTime = readProcessStartTime(pid);
  startTimes.set(pid, { startTime, readAt: now });
  return startTime;
}

/** Same namespace; on Linux both must be known, elsewhere there are no pid namespaces (both null). */
function samePidNamespace(recorded: ProcessIdentity, self: ProcessIdentity): boolean {
  if (process.platform === 'linux' && (recorded.pidNamespace === null || self.pidNamespace === null)) return false;
  return recorded.pidNamespace === self.pidNamespace;
}

function sameBoot(recorded: ProcessIdentity, self: ProcessIdentity): boolean {
  return recorded.bootId !== null && recorded.bootId === self.bootId;
}
