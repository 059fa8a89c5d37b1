/**
 * Test harness for the admission lock: real worker processes (`fixtures/lock-worker.mjs`) driven over IPC,
 * crafted lock directories, and helpers to wait for a process parked at a test point (SIGSTOPped).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onTestFinished } from 'vitest';
import { readSelfIdentity } from '../../src/admission/process-identity.js';

export const WORKER = new URL('./fixtures/lock-worker.mjs', import.meta.url).pathname;
export const STRESS = new URL('./fixtures/lock-stress.mjs', import.meta.url).pathname;

/** Small timings, for tests only (write-admission.md §6). */
export const TEST_LOCK = { staleMs: 1500, heartbeatMs: 300 } as const;

/** A fresh `app.db.changes/` in a new temporary directory, removed when the current test finishes. */
export function tempJournalDir(prefix = 'ct-lock-'): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(root, { recursive: true, force: true, maxRetries: 3 }));
  const dir = join(root, 'app.db.changes');
  mkdirSync(dir);
  return dir;
}

export interface Reply {
  ok: boolean;
  error?: { name: string; code?: string; details?: unknown; message: string };
  [key: string]: unknown;
}

/** A lock worker process. */
export class LockWorker {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly compromised: Array<{ code: string; details: unknown }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 1;
  readonly #pending = new Map<number, (reply: Reply) => void>();

  private constructor(child: ChildProcess, pid: number) {
    this.child = child;
    this.pid = pid;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('message', (message: Reply & { id?: number; event?: string; code?: string; details?: unknown }) => {
      if (message.event === 'compromised') this.compromised.push({ code: message.code ?? '', details: message.details });
      if (message.id !== undefined) this.#pending.get(message.id)?.(message);
    });
  }

  static async start(env: Record<string, string> = {}): Promise<LockWorker> {
    const child = fork(WORKER, [], { env: { ...process.env, ...env }, execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('message', (message: { event?: string; pid?: number }) => resolve(message.pid ?? -1));
      child.once('exit', (code) => reject(new Error(`lock worker exited early (${code})`)));
    });
    return new LockWorker(child, pid);
  }

  /** Sends a command; resolves with the reply (rejects only if the process dies first). */
  request(cmd: string, payload: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, (reply) => {
        this.#pending.delete(id);
        resolve(reply);
      });
      void this.exited.then(({ code, signal }) => reject(new Error(`lock worker ${this.pid} exited (${code ?? signal}) before replying to ${cmd}`)));
      this.child.send({ id, cmd, ...payload });
    });
  }

  async acquire(options: Record<string, unknown>): Promise<Reply> {
    return this.request('acquire', { options });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    process.kill(this.pid, signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    process.kill(this.pid, 'SIGCONT');
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Process state letter from /proc/<pid>/stat ('T' = stopped), or null when gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Waits until `pid` wrote `parkFile` and stopped itself at a test point. */
export async function waitUntilParked(pid: number, parkFile: string, timeoutMs = 15_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (existsSync(parkFile) && processState(pid) === 'T') return readFileSync(parkFile, 'utf8').trim();
    await sleep(5);
  }
  throw new Error(`process ${pid} did not park (${parkFile})`);
}

/** Polls `condition` every 10 ms until true, or throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** An owner.json record for this host, overridable field by field (crafted locks). */
export function craftOwner(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const self = readSelfIdentity();
  const now = new Date().toISOString();
  return {
    protocol: 1, ownerId: `${self.host}:${self.pid}:${'ab'.repeat(16)}`, host: self.host, pid: self.pid,
    pidNamespace: self.pidNamespace, bootId: self.bootId, processStartTime: self.processStartTime,
    mode: 'write', staleMs: 300, createdAt: now, updatedAt: now, ...overrides,
  };
}

/** Creates `<journalDir>/lock/` holding `owner` (an object, raw text, or null for no owner.json). */
export function craftLock(journalDir: string, owner: Record<string, unknown> | string | null): void {
  mkdirSync(join(journalDir, 'lock'));
  if (owner === null) return;
  writeFileSync(join(journalDir, 'lock', 'owner.json'), typeof owner === 'string' ? owner : JSON.stringify(owner));
}

/** The pid of a process that has exited (spawned and reaped). */
export async function deadPid(): Promise<number> {
  const child = fork(WORKER, [], { execPath: process.execPath, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  const pid = child.pid as number;
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}
