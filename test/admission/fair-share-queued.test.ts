/**
 * Issue 8 item 11: the fair share counts writes queued in one process. A process with 3,000 writes queued
 * at once must hand the lock over after fairShareMs to another waiting process, which has only a 2 s
 * lock timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

const FIXTURE = new URL('./fixtures/queued-writer.mjs', import.meta.url).pathname;

interface Writer { child: ChildProcess; lines: string[]; next: (prefix: string) => Promise<string> }

function startWriter(path: string, writes: number, timeoutMs: number, spinMs = 0, staleMs = 2000): Writer {
  const child = spawn(process.execPath, [FIXTURE, path, String(writes), String(timeoutMs), String(spinMs), String(staleMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffer = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d) => {
    buffer += d;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const next = async (prefix: string): Promise<string> => {
    for (;;) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found !== undefined) return found;
      if (child.exitCode !== null) throw new Error(`writer exited: ${stderr}`);
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 50); });
    }
  };
  return { child, lines, next };
}

/** Polls (read-only, briefly) until the table holds a row. */
async function waitForRows(path: string): Promise<void> {
  for (const deadline = performance.now() + 30_000; performance.now() < deadline;) {
    const db = new DatabaseSync(path, { readOnly: true, timeout: 1000 });
    try {
      if (Number(db.prepare('SELECT count(*) AS n FROM t').get()?.n) > 0) return;
    } finally {
      db.close();
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the busy writer committed nothing within 30 s');
}

describe('fair share with writes queued in one process', () => {
  it('ok: a process with 3,000 queued writes hands the lock over to another waiting process within its timeout', async () => {
    const path = join(tempDir('ct-fair-'), 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, who INTEGER, i INTEGER)');
    setup.close();
    await (await openTrail(path)).close();
    // Each of the 3,000 bodies takes at least 0.7 ms: the batch alone needs the lock for more than 2 s. Its
    // long stale time keeps the lease valid throughout, so only the fair share can hand the lock over.
    const busy = startWriter(path, 3000, 60_000, 0.7, 60_000);
    const patient = startWriter(path, 1, 2000);
    await Promise.all([busy.next('ready'), patient.next('ready')]);
    busy.child.stdin!.write('go\n');
    // Let the busy process get the lock and a long run of writes going (its first group committed: a
    // fixed delay was not always enough on a loaded machine), then the other one asks.
    await waitForRows(path);
    await new Promise((r) => setTimeout(r, 100));
    patient.child.stdin!.write('go\n');
    const small = JSON.parse(await patient.next('{'));
    expect(small, JSON.stringify(small)).toMatchObject({ ok: true });
    expect(small.ms).toBeLessThan(2000);
    // The busy process still has writes queued and was not fenced: the lock was handed over mid-batch.
    expect(busy.lines.some((l) => l.startsWith('{'))).toBe(false);
    busy.child.kill('SIGKILL');
    await new Promise((r) => busy.child.once('exit', r));
    const check = await openTrail(path);
    try {
      const order = check.read((db) => db.prepare('SELECT who FROM t ORDER BY id').all().map((r) => r.who));
      expect(order.indexOf(patient.child.pid!)).toBeGreaterThan(0);
      expect((await check.verify({ replay: true })).headSeq).toBe(order.length);
    } finally {
      await check.close();
    }
  }, 60_000);
});
