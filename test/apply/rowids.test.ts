/**
 * Rowids of keyed rowid tables (PRIMARY KEY not the rowid) are recorded by the writer and reproduced by
 * every replay (journal/FORMAT.md §6.1, REPLAY.md "Rowids"); verify --replay compares them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { replayJournal } from '../../src/apply/replay.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { decodeRowids } from '../../src/journal/rowids.js';
import { tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

const SCHEMA = `PRAGMA foreign_keys = ON;
  CREATE TABLE p(sku TEXT PRIMARY KEY NOT NULL, title TEXT, code TEXT UNIQUE);
  CREATE TABLE line(sku TEXT NOT NULL REFERENCES p(sku) ON DELETE CASCADE ON UPDATE CASCADE, n INTEGER NOT NULL, qty INTEGER, PRIMARY KEY(sku, n));
  CREATE TABLE plain(id INTEGER PRIMARY KEY, v TEXT);
  INSERT INTO p VALUES('a', 'alpha', 'A'), ('b', 'beta', 'B'), ('c', 'gamma', 'C');
  INSERT INTO line VALUES('a', 1, 10), ('a', 2, 20), ('b', 1, 5);`;

async function setup(sql = SCHEMA) {
  const result = await tempTrail(sql);
  opened.push(result.trail);
  return result;
}

function rowids(db: DatabaseSync, table: string): unknown[] {
  return db.prepare(`SELECT rowid AS r, * FROM ${table} ORDER BY rowid`).all().map((row) => ({ ...row }));
}

/** Replays the trail's journal into a new file and returns rowid dumps of both sides. */
function replayAndCompare(trail: Trail, path: string, tables: string[]): { source: unknown; replay: unknown } {
  const dir = mkdtempSync(join(tmpdir(), 'ct-rowids-'));
  try {
    const target = join(dir, 'replay.db');
    replayJournal(openJournal(trail.journalDir, readCommittedHead(path)), target);
    const replica = new DatabaseSync(target, { readOnly: true });
    const source = new DatabaseSync(path, { readOnly: true });
    try {
      return { source: tables.map((t) => rowids(source, t)), replay: tables.map((t) => rowids(replica, t)) };
    } finally {
      replica.close();
      source.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('rowids of keyed rowid tables', () => {
  it('ok: deletes, re-inserts, key changes, REPLACE, rowid moves and cascades replay with the source\'s rowids', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`)); // cascades to line
    await trail.write((db) => db.exec(`INSERT INTO p VALUES('a', 'again', 'A'); INSERT INTO line VALUES('a', 1, 11)`));
    await trail.write((db) => db.exec(`UPDATE p SET sku = 'bb' WHERE sku = 'b'`)); // key change, cascades ON UPDATE
    await trail.write((db) => db.exec(`INSERT OR REPLACE INTO p VALUES('c', 'gamma', 'C')`)); // same values, new rowid
    await trail.write((db) => db.exec(`INSERT OR REPLACE INTO p VALUES('d', 'delta', 'A')`)); // deletes 'a' through UNIQUE(code)
    await trail.write((db) => db.exec(`UPDATE p SET rowid = 100 WHERE sku = 'd'`)); // rowid only: no changeset change
    await trail.write((db) => db.exec(`UPDATE p SET rowid = -5 WHERE sku = 'c'; INSERT INTO plain VALUES (1, 'x')`));
    const result = replayAndCompare(trail, path, ['p', 'line', 'plain']);
    expect(result.replay).toEqual(result.source);
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('ok: an entry records only rows whose rowid changed; plain INTEGER PRIMARY KEY tables record nothing', async () => {
    const { trail } = await setup();
    await trail.write((db) => db.exec(`UPDATE p SET title = 'x' WHERE sku = 'a'; INSERT INTO plain VALUES (1, 'x')`));
    await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'c'`));
    const entries = [];
    for await (const entry of trail.entries()) entries.push(entry);
    expect(entries[0]!.rowids).toBeUndefined();
    const recorded = decodeRowids(entries[1]!.rowids!, { file: 'test', offset: 0 });
    expect(recorded).toEqual([{ table: 'p', keyOrdinals: [1], rows: [{ key: ['c'], before: 3n, after: null }] }]);
  });

  it('ok: a write that only moves a rowid is journaled', async () => {
    const { trail } = await setup();
    const entry = await trail.write((db) => db.exec(`UPDATE p SET rowid = 42 WHERE sku = 'b'`));
    expect(entry).toMatchObject({ seq: 1, tables: [] });
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('err: verify --replay reports a rowid changed outside changetrail', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO p VALUES('e', 'epsilon', 'E')`));
    await trail.close();
    const db = new DatabaseSync(path);
    db.exec(`UPDATE p SET rowid = 77 WHERE sku = 'e'`);
    db.close();
    const { openTrail } = await import('../../src/index.js');
    const reopened = await openTrail(path);
    opened.push(reopened);
    const error = await reopened.verify({ replay: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect((error as ChangetrailError).code).toBe('FOREIGN_WRITE_DETECTED');
  });

  it('ok: capture follows migrations: a table created, rebuilt and renamed by migrate records rowids afterwards', async () => {
    const { trail, path } = await setup();
    await trail.migrate(`CREATE TABLE tag(name TEXT PRIMARY KEY NOT NULL COLLATE NOCASE, n INTEGER); INSERT INTO tag VALUES ('Red', 1), ('blue', 2)`);
    await trail.write((db) => db.exec(`DELETE FROM tag WHERE name = 'red'; INSERT INTO tag VALUES ('green', 3)`));
    await trail.migrate(`CREATE TABLE tag2(name TEXT PRIMARY KEY NOT NULL COLLATE NOCASE, n INTEGER, extra TEXT);
      INSERT INTO tag2(rowid, name, n) SELECT rowid, name, n FROM tag; DROP TABLE tag; ALTER TABLE tag2 RENAME TO tag`);
    await trail.write((db) => db.exec(`DELETE FROM tag WHERE name = 'BLUE'; INSERT INTO tag(name, n) VALUES ('RED', 4)`));
    const undo = await trail.undo(4);
    expect(undo).toMatchObject({ undoes: 4 });
    const result = replayAndCompare(trail, path, ['tag', 'p']);
    expect(result.replay).toEqual(result.source);
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('ok: rowids survive a user dropping the capture triggers through trail.database (reinstalled at the next write)', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`UPDATE p SET title = 'first' WHERE sku = 'c'`));
    const names = trail.database.prepare(`SELECT name FROM temp.sqlite_schema WHERE type = 'trigger'`).all().map((r) => String(r.name));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) trail.database.exec(`DROP TRIGGER temp."${name}"`);
    await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`));
    await trail.undo(2);
    const result = replayAndCompare(trail, path, ['p', 'line']);
    expect(result.replay).toEqual(result.source);
  });

  it('ok: TEXT keys that are not UTF-8 keep their bytes', async () => {
    const { trail, path } = await setup(`CREATE TABLE n(k TEXT PRIMARY KEY NOT NULL, v TEXT); INSERT INTO n VALUES ('zero', 'first'), (CAST(x'ff61' AS TEXT), 'bad utf-8'), ('ok', 'fine')`);
    const entry = await trail.write((db) => db.exec(`DELETE FROM n WHERE k = CAST(x'ff61' AS TEXT)`));
    await trail.write((db) => db.exec(`INSERT INTO n VALUES ('new', 'row')`));
    await trail.undo(entry!.seq);
    const result = replayAndCompare(trail, path, ['n']);
    expect(result.replay).toEqual(result.source);
    expect(trail.read((db) => db.prepare(`SELECT rowid AS r FROM n WHERE k = CAST(x'ff61' AS TEXT)`).get()!.r)).toBe(2);
  });
});
