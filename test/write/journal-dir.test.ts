/**
 * Issue 8 item 9: a journal starts only in a directory that is empty or already this database's journal;
 * changetrail never deletes a file it did not create; two databases given the same journalDir cannot wipe
 * each other's journal.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

const WRITER = new URL('./fixtures/writer.mjs', import.meta.url).pathname;

function database(dir: string, name: string): string {
  const path = join(dir, name);
  const db = new DatabaseSync(path);
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
  db.close();
  return path;
}

async function errorOf(promise: Promise<unknown>): Promise<ChangetrailError | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    if (error instanceof ChangetrailError) return error;
    throw error;
  }
}

describe('journalDir', () => {
  it('err: a directory holding the user\'s files is refused (JOURNAL_MISMATCH) and nothing in it is deleted or overwritten', async () => {
    const dir = tempDir('ct-jdir-');
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    writeFileSync(join(shared, 'notes.tmp'), 'mine');
    writeFileSync(join(shared, 'holiday.seg'), 'photos');
    writeFileSync(join(shared, 'head'), 'my head');
    const error = await errorOf(openTrail(database(dir, 'app.db'), { journalDir: shared }));
    expect(error?.code).toBe('JOURNAL_MISMATCH');
    expect(error?.details).toMatchObject({ reason: 'journal directory is not empty' });
    expect(readFileSync(join(shared, 'notes.tmp'), 'utf8')).toBe('mine');
    expect(readFileSync(join(shared, 'holiday.seg'), 'utf8')).toBe('photos');
    expect(readFileSync(join(shared, 'head'), 'utf8')).toBe('my head');
    expect(readdirSync(shared).filter((n) => !n.startsWith('lock')).sort()).toEqual(['head', 'holiday.seg', 'notes.tmp']);
  });

  it('err: two databases with the same journalDir: the second is refused, before and after the first wrote entries', async () => {
    const dir = tempDir('ct-jdir-');
    const shared = join(dir, 'shared');
    const a = await openTrail(database(dir, 'a.db'), { journalDir: shared });
    const manifest = readFileSync(join(shared, 'manifest'));
    // The first journal has no entry yet: the second database must not take it for an interrupted start.
    const early = await errorOf(openTrail(database(dir, 'b.db'), { journalDir: shared }));
    expect(early?.code).toBe('JOURNAL_MISMATCH');
    expect(early?.details).toMatchObject({ reason: 'journal directory belongs to another database' });
    expect(readFileSync(join(shared, 'manifest'))).toEqual(manifest);
    await a.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    expect((await errorOf(openTrail(join(dir, 'b.db'), { journalDir: shared })))?.code).toBe('JOURNAL_MISMATCH');
    await a.write((db) => db.exec(`INSERT INTO t VALUES (2, 'a')`));
    expect((await a.verify({ replay: true })).headSeq).toBe(2);
    await a.close();
    expect(existsSync(join(shared, 'starting'))).toBe(false);
  });

  it('ok: an interrupted start of the same database is cleared and started again', async () => {
    const dir = tempDir('ct-jdir-');
    const path = database(dir, 'app.db');
    const run = spawnSync(process.execPath, [WRITER, path, '1', '1'], { env: { ...process.env, CHANGETRAIL_CRASH_AT: 'after-manifest:1' } });
    expect(run.signal).toBe('SIGKILL');
    expect(existsSync(join(`${path}.changes`, 'starting'))).toBe(true);
    // Another database cannot clear it...
    const other = await errorOf(openTrail(database(dir, 'other.db'), { journalDir: `${path}.changes` }));
    expect(other?.code).toBe('JOURNAL_MISMATCH');
    // ...its own database can.
    const trail = await openTrail(path);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    expect((await trail.verify({ replay: true })).headSeq).toBe(1);
    await trail.close();
  });
});
