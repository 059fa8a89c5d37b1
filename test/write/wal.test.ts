/** journalMode: 'wal' is an explicit opt-in; the same guarantees hold. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { dumpFile, tempTrail } from '../helpers/db.js';

describe('WAL mode', () => {
  it('ok: writes, migrations and a second process-like connection agree; replay equals the database', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { journalMode: 'wal' });
    try {
      expect((await trail.status()).journalMode).toBe('wal');
      await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a'), (2, 'b')`));
      await trail.migrate('ALTER TABLE t ADD COLUMN n INTEGER DEFAULT 0');
      const other = await openTrail(path, { journalMode: 'wal' });
      await other.write((db) => db.exec(`UPDATE t SET n = 5 WHERE id = 2`));
      await other.close();
      await trail.write((db) => db.exec(`DELETE FROM t WHERE id = 1`));
      expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 4, replayed: true });
      const changesets = [];
      for await (const e of trail.entries()) if (e.kind === 'write') changesets.push(e.changeset);
      expect(changesets).toHaveLength(3);
    } finally {
      await trail.close();
    }
  });

  it('err: a foreign write in WAL mode is detected at the next admitted write', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { journalMode: 'wal' });
    try {
      await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
      const foreign = new DatabaseSync(path);
      foreign.exec(`INSERT INTO t VALUES (9, 'sneaky')`);
      foreign.close();
      const error = await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`)).then(() => null, (e) => e);
      expect(error).toBeInstanceOf(ChangetrailError);
      expect(error.code).toBe('FOREIGN_WRITE_DETECTED');
    } finally {
      await trail.close();
    }
    // The refused write changed nothing: only the admitted row and the foreign one are there.
    expect(dumpFile(path).t).toEqual([[1, 'integer', 'a', 'text'], [9, 'integer', 'sneaky', 'text']]);
  });

  it('ok: another process\'s write that nets to no change, made after this one opened, is not taken for a foreign write', async () => {
    // WAL has no file change counter: foreign writes show as a data_version move while the head row stays.
    // A no-op write (insert + delete) commits pages, so it must move the head row too.
    const { trail: setup, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { journalMode: 'wal' });
    await setup.close();
    const other = spawn(process.execPath, ['--input-type=module', '-e', `
      import { openTrail } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      import { createInterface } from 'node:readline';
      const trail = await openTrail(${JSON.stringify(path)}, { lock: { idleReleaseMs: 60000 } });
      const lines = createInterface({ input: process.stdin });
      await trail.write((db) => db.exec("INSERT INTO t VALUES (1, 'a')"));
      console.log('wrote');
      for await (const line of lines) {
        const entry = await trail.write((db) => db.exec("INSERT INTO t VALUES (9, 'x'); DELETE FROM t WHERE id = 9"));
        console.log(entry === null ? 'no-op' : 'entry');
        await trail.close();
        process.exit(0);
      }
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    const output = createInterface({ input: other.stdout! })[Symbol.asyncIterator]();
    expect((await output.next()).value).toBe('wrote');
    // Opened while the other process still holds its admission (same epoch, head at entry 1).
    const trail = await openTrail(path, { lock: { timeoutMs: 20_000 } });
    try {
      other.stdin!.write('go\n');
      expect((await output.next()).value).toBe('no-op');
      await new Promise((resolve) => other.on('exit', resolve));
      expect(await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`))).toMatchObject({ seq: 2 });
      expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 2, replayed: true });
    } finally {
      await trail.close();
    }
  });

  it('ok: resync --if-changed acknowledges an outside ANALYZE for every process, not only the one that ran it', async () => {
    const { trail: first, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { journalMode: 'wal', lock: { idleReleaseMs: 300 } });
    await first.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    // Opened after that write, within the first trail's admission (it keeps the lock for idleReleaseMs).
    const second = await openTrail(path, { lock: { timeoutMs: 20_000 } });
    try {
      const outside = new DatabaseSync(path);
      outside.exec('ANALYZE');
      outside.close();
      expect(await first.resync({ ifChanged: true })).toBeNull();
      expect(await second.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`))).toMatchObject({ seq: 2 });
    } finally {
      await second.close();
      await first.close();
    }
  });
});
