/** openTrailReader's refusals of what is not a tracked database, and of a database it cannot read now. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail, openTrailReader } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

/** Another process holding SQLite's EXCLUSIVE lock (rollback mode: it blocks every reader) until its stdin closes. */
async function holdExclusiveLock(path: string) {
  const script = `const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(process.argv[1]);
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked\\n');
    process.stdin.resume().on('end', () => { db.exec('ROLLBACK'); db.close(); });`;
  const child = spawn(process.execPath, ['-e', script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return { release: async () => { child.stdin!.end(); await once(child, 'exit'); } };
}

describe('openTrailReader', () => {
  it('err: a file that is not a SQLite database is NOT_A_DATABASE (as openTrail says), journal beside it or not', async () => {
    const path = join(tempDir('ct-reader-'), 'notes.db');
    writeFileSync(path, 'not a database\n');
    for (const journal of [false, true]) {
      if (journal) mkdirSync(`${path}.changes`);
      const error = await openTrailReader(path).then(async (reader) => reader.status(), (e: unknown) => e);
      expect(ChangetrailError.is(error, 'NOT_A_DATABASE') && error.details).toEqual({ path, reason: 'not a SQLite database' });
    }
    expect(readFileSync(path, 'utf8')).toBe('not a database\n');
  });

  it('err: SQLite\'s lock held by another process for the whole busy timeout is DATABASE_BUSY, and reading works once it is released', async () => {
    const path = join(tempDir('ct-reader-'), 'app.db');
    const trail = await openTrail(path);
    await trail.migrate('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    await trail.write((db) => db.exec('INSERT INTO t VALUES (1)'));
    await trail.close();
    const holder = await holdExclusiveLock(path);
    try {
      const error = await openTrailReader(path, { busyTimeoutMs: 150 }).then((reader) => reader.close(), (e: unknown) => e);
      expect(ChangetrailError.is(error, 'DATABASE_BUSY') && error.details).toEqual({ path, waitedMs: 150, operation: 'read' });
    } finally {
      await holder.release();
    }
    const reader = await openTrailReader(path, { busyTimeoutMs: 150 });
    expect([...reader.entries()].map((entry) => entry.seq)).toEqual([1, 2]);
    reader.close();
  });
});

