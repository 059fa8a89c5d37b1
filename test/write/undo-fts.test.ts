/**
 * Issue 8 item 1: undo, replay and verify over rowid tables whose PRIMARY KEY is not the rowid, with FTS5
 * external-content indexes kept by triggers. Real files, the real writer.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, openReplica, type Trail } from '../../src/index.js';
import { tempDir, tempTrail } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

const FTS_SCHEMA = `CREATE TABLE p(sku TEXT PRIMARY KEY NOT NULL, title TEXT);
  CREATE VIRTUAL TABLE p_fts USING fts5(title, content='p', content_rowid='rowid');
  CREATE TRIGGER p_ai AFTER INSERT ON p BEGIN INSERT INTO p_fts(rowid,title) VALUES(new.rowid,new.title); END;
  CREATE TRIGGER p_ad AFTER DELETE ON p BEGIN INSERT INTO p_fts(p_fts,rowid,title) VALUES('delete',old.rowid,old.title); END;
  CREATE TRIGGER p_au AFTER UPDATE ON p BEGIN
    INSERT INTO p_fts(p_fts,rowid,title) VALUES('delete',old.rowid,old.title);
    INSERT INTO p_fts(rowid,title) VALUES(new.rowid,new.title); END;
  INSERT INTO p VALUES('a','alpha'),('b','beta');`;

async function setup(sql: string) {
  const result = await tempTrail(sql);
  opened.push(result.trail);
  return result;
}

function match(db: DatabaseSync, table: string, term: string): unknown[] {
  return db.prepare(`SELECT rowid, * FROM ${table} WHERE ${table} MATCH ? ORDER BY rowid`).all(term).map((row) => ({ ...row }));
}

function ftsIntegrity(db: DatabaseSync, table: string): string {
  try {
    db.exec(`INSERT INTO ${table}(${table}) VALUES('integrity-check')`);
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  }
}

async function codeOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => 'ok', (e) => (e instanceof ChangetrailError ? { code: e.code, details: e.details } : `${e?.name}: ${e?.message}`));
}

describe('Trail.undo over FTS5 external content (issue 8.1)', () => {
  it('ok: undo of a delete restores the row at its rowid; MATCH and integrity-check pass; verify --replay ok', async () => {
    const { trail, path } = await setup(FTS_SCHEMA);
    const rowidOfA = trail.read((db) => db.prepare(`SELECT rowid FROM p WHERE sku = 'a'`).get()!.rowid);
    const entry = await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`));
    await trail.undo(entry!.seq);
    await trail.close();
    const db = new DatabaseSync(path);
    try {
      expect(db.prepare(`SELECT rowid FROM p WHERE sku = 'a'`).get()!.rowid).toBe(rowidOfA);
      expect(match(db, 'p_fts', 'alpha')).toEqual([{ rowid: rowidOfA, title: 'alpha' }]);
      expect(ftsIntegrity(db, 'p_fts')).toBe('ok');
      expect(db.prepare('PRAGMA integrity_check').get()!.integrity_check).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('ok: undo works when a later entry changed other rows of the same FTS-indexed table', async () => {
    const { trail } = await setup(FTS_SCHEMA);
    const entry = await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`));
    await trail.write((db) => db.exec(`INSERT INTO p VALUES('c', 'gamma'); UPDATE p SET title = 'bravo' WHERE sku = 'b'`));
    expect(await codeOf(trail.undo(entry!.seq))).toBe('ok');
    trail.read((db) => {
      expect(match(db, 'p_fts', 'alpha').length).toBe(1);
      expect(match(db, 'p_fts', 'gamma').length).toBe(1);
      expect(match(db, 'p_fts', 'bravo').length).toBe(1);
      expect(match(db, 'p_fts', 'beta').length).toBe(0);
    });
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('err: undo is refused when a later entry changed a row being restored, naming that entry and the key', async () => {
    const { trail } = await setup(FTS_SCHEMA);
    const entry = await trail.write((db) => db.exec(`UPDATE p SET title = 'apple' WHERE sku = 'a'`));
    await trail.write((db) => db.exec(`INSERT INTO p VALUES('c', 'gamma')`));
    const later = await trail.write((db) => db.exec(`UPDATE p SET title = 'apricot' WHERE sku = 'a'`));
    expect(await codeOf(trail.undo(entry!.seq))).toMatchObject({
      code: 'CHANGESET_CONFLICT', details: { table: 'p', conflict: 'ROW_CHANGED_LATER', seq: entry!.seq, laterSeq: later!.seq, key: { sku: 'a' } },
    });
  });

  it('ok: regular FTS5 rows are restored through the table when later entries changed the index', async () => {
    const { trail } = await setup(`CREATE VIRTUAL TABLE notes USING fts5(body, tag UNINDEXED); INSERT INTO notes(rowid, body, tag) VALUES (1, 'alpha one', 'x'), (2, 'beta two', 'y')`);
    const entry = await trail.write((db) => db.exec(`DELETE FROM notes WHERE rowid = 1; UPDATE notes SET body = 'beta again' WHERE rowid = 2`));
    await trail.write((db) => db.exec(`INSERT INTO notes(rowid, body, tag) VALUES (3, 'gamma three', 'z')`));
    const undo = await trail.undo(entry!.seq);
    expect(undo).toMatchObject({ undoes: entry!.seq });
    trail.read((db) => {
      expect(match(db, 'notes', 'alpha')).toEqual([{ rowid: 1, body: 'alpha one', tag: 'x' }]);
      expect(match(db, 'notes', 'two')).toEqual([{ rowid: 2, body: 'beta two', tag: 'y' }]);
      expect(match(db, 'notes', 'gamma').length).toBe(1);
    });
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('ok: composite keys: a restored row keeps its rowid, the index follows', async () => {
    const { trail } = await setup(`CREATE TABLE c(shop TEXT NOT NULL, n INTEGER NOT NULL, body TEXT, PRIMARY KEY (shop, n));
      CREATE VIRTUAL TABLE c_fts USING fts5(body, content='c', content_rowid='rowid');
      CREATE TRIGGER c_ai AFTER INSERT ON c BEGIN INSERT INTO c_fts(rowid, body) VALUES (new.rowid, new.body); END;
      CREATE TRIGGER c_ad AFTER DELETE ON c BEGIN INSERT INTO c_fts(c_fts, rowid, body) VALUES ('delete', old.rowid, old.body); END;
      INSERT INTO c VALUES ('north', 1, 'alpha'), ('north', 2, 'beta'), ('south', 1, 'gamma')`);
    const rowid = trail.read((db) => db.prepare(`SELECT rowid FROM c WHERE shop = 'north' AND n = 2`).get()!.rowid);
    const entry = await trail.write((db) => db.exec(`DELETE FROM c WHERE shop = 'north'`));
    await trail.write((db) => db.exec(`INSERT INTO c VALUES ('west', 9, 'delta')`));
    await trail.undo(entry!.seq);
    trail.read((db) => {
      expect(match(db, 'c_fts', 'beta')).toEqual([{ rowid, body: 'beta' }]);
      expect(match(db, 'c_fts', 'delta').length).toBe(1);
    });
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('err: contentless FTS5 and R*Tree: undo after later index changes is UNDO_UNSUPPORTED; without them it is exact', async () => {
    const { trail } = await setup(`CREATE VIRTUAL TABLE cl USING fts5(body, content='');
      CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1);
      INSERT INTO cl(rowid, body) VALUES (1, 'alpha'); INSERT INTO rt VALUES (1, 0, 1)`);
    const first = await trail.write((db) => db.exec(`INSERT INTO cl(rowid, body) VALUES (2, 'beta'); INSERT INTO rt VALUES (2, 5, 6)`));
    const second = await trail.write((db) => db.exec(`INSERT INTO rt VALUES (3, 7, 8)`));
    expect(await codeOf(trail.undo(second!.seq))).toBe('ok'); // nothing changed the R*Tree since: exact
    await trail.write((db) => db.exec(`INSERT INTO cl(rowid, body) VALUES (4, 'gamma'); INSERT INTO rt VALUES (4, 9, 10)`));
    const refused = await codeOf(trail.undo(first!.seq));
    expect(refused).toMatchObject({ code: 'UNDO_UNSUPPORTED', details: { seq: first!.seq, kind: 'write' } });
    expect(['cl', 'rt']).toContain((refused as { details: { table: string } }).details.table);
    expect(['fts5-contentless', 'rtree']).toContain((refused as { details: { reason: string } }).details.reason);
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('ok: a replica reproduces the rowids: its FTS5 external-content index answers as the primary\'s', async () => {
    const { trail, path } = await setup(FTS_SCHEMA);
    const entry = await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`));
    await trail.write((db) => db.exec(`INSERT INTO p VALUES ('c', 'gamma')`));
    await trail.undo(entry!.seq);
    const replica = await openReplica(`${path}.replica.db`, { source: path, pollIntervalMs: 50 });
    try {
      await replica.sync();
      const expected = trail.read((db) => ['alpha', 'beta', 'gamma'].map((w) => match(db, 'p_fts', w)));
      const db = new DatabaseSync(`${path}.replica.db`);
      try {
        expect(['alpha', 'beta', 'gamma'].map((w) => match(db, 'p_fts', w))).toEqual(expected);
        expect(ftsIntegrity(db, 'p_fts')).toBe('ok');
      } finally {
        db.close();
      }
    } finally {
      await replica.close();
    }
  });

  it('ok: an entry that only re-indexed rows (an UPDATE writing equal values) undoes to nothing, the index stays consistent', async () => {
    const { trail, path } = await setup(FTS_SCHEMA);
    const entry = await trail.write((db) => db.exec(`UPDATE p SET title = title WHERE sku = 'a'`));
    expect(entry!.tables.map((t) => t.table)).not.toContain('p');
    await trail.write((db) => db.exec(`INSERT INTO p VALUES ('c', 'gamma')`));
    expect(await codeOf(trail.undo(entry!.seq))).toBe('ok');
    trail.read((db) => expect(match(db, 'p_fts', 'alpha').length).toBe(1));
    await trail.close();
    const db = new DatabaseSync(path);
    try {
      expect(ftsIntegrity(db, 'p_fts')).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('ok: the issue\'s CLI steps: init, exec DELETE, undo 1, then MATCH works and integrity-check passes', () => {
    const path = join(tempDir('ct-undo-fts-cli-'), 'm.db');
    const seed = new DatabaseSync(path);
    seed.exec(FTS_SCHEMA);
    seed.close();
    for (const args of [['init', path], ['exec', path, `DELETE FROM p WHERE sku='a'`], ['undo', path, '1'], ['verify', path, '--replay']]) {
      const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
      expect(run.status, `${args[0]}: ${run.stderr}`).toBe(0);
    }
    const db = new DatabaseSync(path);
    try {
      expect(match(db, 'p_fts', 'alpha')).toEqual([{ rowid: 1, title: 'alpha' }]);
      expect(ftsIntegrity(db, 'p_fts')).toBe('ok');
    } finally {
      db.close();
    }
  });
});
