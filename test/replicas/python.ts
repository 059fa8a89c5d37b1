/**
 * Running the Python reader (replicas/python) from tests: finds a python3 that can import msgpack (Debian's
 * python3-msgpack), runs `python3 -m changetrail_reader ...` as a real process, and parses its output.
 * A missing interpreter or package fails the test with the package to install; it never skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON_PACKAGE_DIR = fileURLToPath(new URL('../../replicas/python/', import.meta.url));

let found: string | undefined;

/** The first of $CHANGETRAIL_PYTHON, /usr/bin/python3, python3 that imports msgpack. */
export function findPython(): string {
  if (found !== undefined) return found;
  const candidates = [process.env.CHANGETRAIL_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => typeof c === 'string' && c.length > 0);
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import msgpack, ctypes.util; print(ctypes.util.find_library("sqlite3"))'], { encoding: 'utf8' });
    if (probe.status === 0 && probe.stdout.trim() !== 'None') return (found = candidate);
  }
  throw new Error(`no python3 with msgpack and libsqlite3 found (tried ${candidates.join(', ')}): install the Debian packages `
    + '`apt-get install -y python3-msgpack libsqlite3-0` (or set CHANGETRAIL_PYTHON)');
}

export interface PythonResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as NDJSON. */
  lines: unknown[];
  /** The `{error}` object printed on stderr with --json, if any. */
  error: { code: string; details: Record<string, unknown>; message: string } | null;
}

/** Runs `python3 -m changetrail_reader <args> --json` to completion. */
export function runPython(args: string[]): PythonResult {
  const run = spawnSync(findPython(), ['-B', '-m', 'changetrail_reader', ...args, '--json'], { cwd: PYTHON_PACKAGE_DIR, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return parseResult(run.status, run.stdout, run.stderr);
}

export function parseResult(status: number | null, stdout: string, stderr: string): PythonResult {
  const lines = stdout.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as unknown);
  const errorLine = stderr.split('\n').find((line) => line.startsWith('{"error"'));
  const error = errorLine === undefined ? null : (JSON.parse(errorLine) as { error: PythonResult['error'] }).error;
  if (status !== 0 && status !== 1) throw new Error(`python reader exited with ${status}: ${stderr}`);
  return { status, stdout, stderr, lines, error };
}

/** Starts `python3 -m changetrail_reader <args> --json` without waiting (for --follow and kill tests). */
export function startPython(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(findPython(), ['-B', '-m', 'changetrail_reader', ...args, '--json'], {
    cwd: PYTHON_PACKAGE_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
}
