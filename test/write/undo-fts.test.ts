/**
 * Issue 8 item 1: undo, replay and verify over rowid tables whose PRIMARY KEY is not the rowid, with FTS5
 * external-content indexes kept by triggers. Real files, the real writer.
 */
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { tempTrail } from '../helpers/db.js';

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
});
