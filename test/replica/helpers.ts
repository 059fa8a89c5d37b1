/** Helpers for replica tests: real primaries with journals, digests of both sides, a follower process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'vitest';
import { digestTables } from '../../src/apply/digest.js';
import { openTrail, type Trail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

export const FOLLOWER = new URL('./fixtures/follower.mjs', import.meta.url).pathname;

export interface Primary {
  trail: Trail;
  path: string;
  dir: string;
  replicaPath: string;
}

export async function tempPrimary(setupSql: string): Promise<Primary> {
  const dir = tempDir('ct-replica-');
  const path = join(dir, 'app.db');
  const db = new DatabaseSync(path);
  db.exec(setupSql);
  db.close();
  const trail = await openTrail(path, { lock: { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 } });
  return { trail, path, dir, replicaPath: join(dir, 'replica.db') };
}

/** Table name → digest of every recorded table, shadow tables included (changetrail's own excluded). */
export function digestFile(path: string): Map<string, string> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return digestTables(db);
  } finally {
    db.close();
  }
}

/** The replica holds exactly the primary's rows, and is a sound database. */
export function expectReplicaEquals(primaryPath: string, replicaPath: string): void {
  expect(Object.fromEntries(digestFile(replicaPath))).toEqual(Object.fromEntries(digestFile(primaryPath)));
  const db = new DatabaseSync(replicaPath, { readOnly: true });
  try {
    expect(db.prepare('PRAGMA integrity_check').all()).toEqual([{ integrity_check: 'ok' }]);
  } finally {
    db.close();
  }
}

export interface FollowerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Seqs the follower reported as committed ("applied <seq>" lines). */
  applied: number[];
  error: { code?: string; details?: unknown } | null;
}

/** Runs the follower fixture: `mode` 'sync' catches up and exits; 'follow' follows until SIGTERM. */
export function runFollower(source: string, replica: string, mode: 'sync' | 'follow', env: Record<string, string> = {}, onLine?: (line: string, child: ReturnType<typeof spawn>) => void): Promise<FollowerRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [FOLLOWER, source, replica, mode], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (data) => {
      stdout += data;
      pending += data;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine?.(line, child);
    });
    child.stderr.on('data', (data) => (stderr += data));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const lines = stdout.split('\n');
      const applied = lines.filter((l) => l.startsWith('applied ')).map((l) => Number(l.slice(8)));
      const errorLine = lines.find((l) => l.startsWith('error '));
      resolvePromise({ code, signal, stdout, stderr, applied, error: errorLine === undefined ? null : JSON.parse(errorLine.slice(6)) });
    });
  });
}
