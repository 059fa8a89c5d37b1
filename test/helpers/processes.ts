/** Real writer child processes for crash and contention tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const WRITER = new URL('../write/fixtures/writer.mjs', import.meta.url).pathname;
const READER = new URL('../write/fixtures/reader-loop.mjs', import.meta.url).pathname;

export interface ReaderRun {
  /** Lines it printed: "obs <seq> <hash>", "err <code> <message>", "bad ...", "reads <n>" (see reader-loop.mjs). */
  lines: string[];
  exited: Promise<number | null>;
}

/** A read-only reader polling `path` until `stopFile` exists (test/write/fixtures/reader-loop.mjs). */
export function startReader(path: string, stopFile: string): ReaderRun {
  const child = spawn(process.execPath, [READER, path, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let pending = '';
  child.stdout!.on('data', (data) => {
    pending += data;
    const parts = pending.split('\n');
    pending = parts.pop()!;
    lines.push(...parts);
  });
  return { lines, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

/**
 * What a reader saw that the committed journal does not hold: entries whose hash differs from the committed
 * entry of that seq (an uncommitted entry), its own "bad" findings (gaps, broken links, entries that
 * changed), and errors other than `allowed`.
 */
export function readerProblems(reader: ReaderRun, committed: Map<number, string>, allowed: ReadonlySet<string>): string[] {
  const problems = reader.lines.filter((line) => line.startsWith('bad '));
  for (const line of reader.lines.filter((l) => l.startsWith('obs '))) {
    const [, seq, hash] = line.split(' ');
    if (committed.get(Number(seq)) !== hash) problems.push(`uncommitted ${seq} ${hash}`);
  }
  for (const line of reader.lines.filter((l) => l.startsWith('err '))) if (!allowed.has(line.split(' ')[1]!)) problems.push(line);
  return problems;
}

export interface WriterRun {
  child: ChildProcess;
  acked: string[];
  fenced: string[];
  /** Ops whose body started (writer.mjs prints them with CT_TRACE_BODY=1). */
  began: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startWriter(path: string, writes: number, rows: number, env: Record<string, string> = {}, holdMs = 0): WriterRun {
  const child = spawn(process.execPath, [WRITER, path, String(writes), String(rows), String(holdMs)], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: WriterRun = { child, acked: [], fenced: [], began: [], stderr: () => stderr, exited: null as never };
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (data) => {
    pending += data;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('ack ')) run.acked.push(line.slice(4));
      if (line.startsWith('fenced ')) run.fenced.push(line.slice(7));
      if (line.startsWith('begin ')) run.began.push(line.slice(6));
    }
  });
  child.stderr!.on('data', (data) => (stderr += data));
  run.exited = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return run;
}

/** How a child process ended, with everything it printed. */
export interface ExitedRun {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs `node script ...args` to its end (its output streams closed too, so no line is missed). */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<ExitedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, stderr, code, signal }));
  });
}

/** The values of a fixture's `ack <value>` lines, in order. */
export function ackedLines(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('ack ')).map((line) => line.slice(4));
}

/** {@link startWriter}'s fixture run to its end: what it acknowledged and how it exited. */
export async function runWriter(path: string, writes: number, rows: number, env: Record<string, string> = {}, holdMs = 0): Promise<ExitedRun & { acked: string[] }> {
  const run = await runScript(WRITER, [path, String(writes), String(rows), String(holdMs)], env);
  return { ...run, acked: ackedLines(run.stdout) };
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** True when the process is stopped (SIGSTOP): state T in /proc/<pid>/stat. */
export function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8') as string;
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  } catch {
    return false;
  }
}
