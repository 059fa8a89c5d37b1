/**
 * Issue 8 item 4: a writer SIGKILLed in the middle of a write leaves a hot rollback journal; whichever
 * connection rolls it back changes every connection's `data_version`. A healthy long-running writer must
 * not take that for a foreign write: nothing was committed outside changetrail.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { tempTrail } from '../helpers/db.js';

const SPILL_WRITER = new URL('./fixtures/spill-writer.mjs', import.meta.url).pathname;
const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

/** Runs spill-writer.mjs until it reports its pages spilled, then SIGKILLs it. */
export async function crashMidWrite(path: string, wal = false): Promise<void> {
  const child = spawn(process.execPath, [SPILL_WRITER, path], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(wal ? { CT_WAL: '1' } : {}) } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => { if (String(d).includes('spilled')) resolve(); });
    child.on('exit', () => reject(new Error(`spill-writer exited before spilling: ${stderr}`)));
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? `${error.code}: ${error.message}` : String(error);
  }
}

describe('a crashed writer', () => {
  it('ok: its hot journal rolled back is not a foreign write for a long-running writer (rollback mode)', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER); CREATE TABLE big(id INTEGER PRIMARY KEY, payload TEXT)');
    opened.push(trail);
    expect(await codeOf(trail.write((db) => db.exec('INSERT INTO t VALUES (1, 0)')))).toBe('ok');
    for (let round = 0; round < 3; round++) {
      await crashMidWrite(path);
      expect(existsSync(`${path}-journal`)).toBe(true);
      // This process's next write takes the dead writer's lock over, rolls the hot journal back, and is admitted.
      expect(await codeOf(trail.write((db) => db.exec('UPDATE t SET n = n + 1')))).toBe('ok');
    }
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM big').get()!.n)).toBe(0);
    expect((await trail.verify({ replay: true })).headSeq).toBe(4);
  });

  it('ok: the same in WAL mode (its uncommitted WAL frames are ignored, not a foreign write)', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER); CREATE TABLE big(id INTEGER PRIMARY KEY, payload TEXT)', { journalMode: 'wal' });
    opened.push(trail);
    expect(await codeOf(trail.write((db) => db.exec('INSERT INTO t VALUES (1, 0)')))).toBe('ok');
    for (let round = 0; round < 3; round++) {
      await crashMidWrite(path, true);
      expect(await codeOf(trail.write((db) => db.exec('UPDATE t SET n = n + 1')))).toBe('ok');
    }
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM big').get()!.n)).toBe(0);
    expect((await trail.verify({ replay: true })).headSeq).toBe(4);
  });
});
