import { describe, expect, it } from 'vitest';
import { constants, type DatabaseSync } from 'node:sqlite';
import {
  applyChangesetExactly, applyChangesetExactlyInTransaction, applyEntryExactly,
} from '../../src/apply/apply-entry.js';
import { ChangetrailError } from '../../src/errors.js';
import { captureTransaction, copyDatabase, dumpDatabase, openDb, tempPath } from './helpers.js';
import { SCHEMA_SQL, migrateSource } from './workload.js';

const BASE_SQL = `
CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, u TEXT UNIQUE);
CREATE TABLE log(id INTEGER PRIMARY KEY, what TEXT);
CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN INSERT INTO log(what) VALUES ('t+' || new.id); END;
INSERT INTO t VALUES (1, 'a', 'ua'), (2, 'b', 'ub');
`;

function source(sql = BASE_SQL): DatabaseSync {
  const db = openDb(tempPath('source.sqlite'));
  db.exec(sql);
  return db;
}

/** A replica: a copy of `db`'s current state, optionally changed by `sql` afterwards. */
function replicaOf(db: DatabaseSync, sql = '', options: { defensive?: boolean } = {}): DatabaseSync {
  const replica = openDb(copyDatabase(db), options);
  if (sql !== '') replica.exec(sql);
  return replica;
}

function expectConflict(fn: () => void, details: Record<string, unknown>): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(ChangetrailError.is(caught, 'CHANGESET_CONFLICT'), String(caught)).toBe(true);
  expect((caught as ChangetrailError).details).toEqual(details);
}

function foreignKeys(db: DatabaseSync): number {
  return Number((db.prepare('PRAGMA foreign_keys').get() as { foreign_keys: number }).foreign_keys);
}

describe('applyChangesetExactly', () => {
  it('ok: applies direct and trigger-made changes without firing triggers again', () => {
    const db = source();
    const replica = replicaOf(db);
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc'); UPDATE t SET v = 'bb' WHERE id = 2; DELETE FROM t WHERE id = 1`));
    applyChangesetExactly(replica, changeset, { seq: 7 });
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(db));
    expect(foreignKeys(replica)).toBe(1);
  });

  it('ok: invert restores the state before the changeset', () => {
    const db = source();
    const before = dumpDatabase(db);
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc'); UPDATE t SET v = NULL WHERE id = 2; DELETE FROM t WHERE id = 1`));
    applyChangesetExactly(db, changeset, { invert: true });
    expect(dumpDatabase(db)).toEqual(before);
  });

  it('ok: an empty changeset changes nothing', () => {
    const db = source();
    const before = dumpDatabase(db);
    applyChangesetExactly(db, new Uint8Array(0));
    expect(dumpDatabase(db)).toEqual(before);
  });

  it('ok: weird table and trigger names are quoted everywhere', () => {
    const weird = 'a"; DROP TABLE t; --';
    const q = `"${weird.replaceAll('"', '""')}"`;
    const db = source(`${BASE_SQL} CREATE TABLE ${q}(${q} INTEGER PRIMARY KEY, "x y" TEXT);
      CREATE TRIGGER ${q.slice(0, -1)}trg" AFTER INSERT ON ${q} BEGIN INSERT INTO log(what) VALUES ('weird'); END;`);
    const replica = replicaOf(db);
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO ${q} VALUES (1, 'x')`));
    applyChangesetExactly(replica, changeset);
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(db));
  });

  it('ok: TEMP triggers of the applying connection do not fire and survive', () => {
    const db = source();
    const replica = replicaOf(db);
    replica.exec(`CREATE TEMP TRIGGER t_spy AFTER INSERT ON main.t BEGIN INSERT INTO log(what) VALUES ('spy'); END;`);
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc')`));
    applyChangesetExactly(replica, changeset);
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(db));
    replica.exec(`INSERT INTO t VALUES (4, 'd', 'ud')`);
    expect(replica.prepare(`SELECT count(*) AS n FROM log WHERE what = 'spy'`).get()).toEqual({ n: 1 });
  });

  it('ok: FTS5 shadow tables are applied in defensive mode, and MATCH on the same connection sees them', () => {
    const db = source(`CREATE VIRTUAL TABLE ft USING fts5(body);`);
    const replica = replicaOf(db); // node:sqlite opens with defensive on
    const match = replica.prepare(`SELECT rowid FROM ft WHERE ft MATCH 'hello'`);
    expect(match.all()).toEqual([]); // caches FTS5's index structure on this connection
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO ft(rowid, body) VALUES (1, 'hello world'), (2, 'hello again')`));
    applyChangesetExactly(replica, changeset);
    expect(match.all().map((row) => row.rowid)).toEqual([1, 2]);
    replica.exec(`INSERT INTO ft(ft) VALUES ('integrity-check')`);
    expect(() => replica.prepare('DELETE FROM ft_data WHERE 0')).toThrow(); // defensive is back on
  });

  it('err: missing table, fewer or more columns, another PRIMARY KEY, a view → CHANGESET_CONFLICT, target unchanged', () => {
    const db = source();
    const changeset = captureTransaction(db, () => db.exec(`UPDATE t SET v = 'x' WHERE id = 1`));
    const cases: [string, string][] = [
      ['DROP TABLE t', 'NO_SUCH_TABLE'],
      ['DROP TABLE t; CREATE VIEW t AS SELECT 1 AS id, 2 AS v, 3 AS u', 'NO_SUCH_TABLE'],
      ['DROP TABLE t; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', 'COLUMN_COUNT'],
      ['ALTER TABLE t ADD COLUMN extra DEFAULT 1', 'COLUMN_COUNT'],
      ['DROP TABLE t; CREATE TABLE t(id INTEGER, v TEXT PRIMARY KEY, u TEXT)', 'PRIMARY_KEY'],
      ['DROP TABLE t; CREATE TABLE t(id INTEGER, v TEXT, u TEXT, PRIMARY KEY(id, v))', 'PRIMARY_KEY'],
    ];
    for (const [sql, conflict] of cases) {
      const replica = replicaOf(db, `DROP TRIGGER t_ai; ${sql}`);
      const before = dumpDatabase(replica);
      expectConflict(() => applyChangesetExactly(replica, changeset, { seq: 3 }), { table: 't', conflict, seq: 3 });
      expect(dumpDatabase(replica), sql).toEqual(before);
      expect(foreignKeys(replica)).toBe(1);
    }
  });

  it('err: composite key in another order → PRIMARY_KEY', () => {
    const db = source('CREATE TABLE c(a, b, v, PRIMARY KEY(a, b));');
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO c VALUES (1, 2, 3)`));
    const replica = openDb(tempPath());
    replica.exec('CREATE TABLE c(a, b, v, PRIMARY KEY(b, a));');
    expectConflict(() => applyChangesetExactly(replica, changeset), { table: 'c', conflict: 'PRIMARY_KEY' });
  });

  it('err: DATA, NOTFOUND, CONFLICT, CONSTRAINT → CHANGESET_CONFLICT naming the table, target unchanged', () => {
    const db = source();
    const update = captureTransaction(db, () => db.exec(`UPDATE t SET v = 'a2' WHERE id = 1`));
    const insert = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (5, 'e', 'ue')`));
    const cases: [Uint8Array, string, string][] = [
      [update, `UPDATE t SET v = 'other' WHERE id = 1`, 'DATA'],
      [update, `DELETE FROM t WHERE id = 1`, 'NOTFOUND'],
      [insert, `INSERT INTO t VALUES (5, 'x', 'ux')`, 'CONFLICT'],
      [insert, `INSERT INTO t VALUES (6, 'x', 'ue')`, 'CONSTRAINT'],
    ];
    const start = openDb(tempPath());
    start.exec(BASE_SQL);
    for (const [changeset, divergence, conflict] of cases) {
      const replica = replicaOf(start, divergence);
      const before = dumpDatabase(replica);
      expectConflict(() => applyChangesetExactly(replica, changeset, { seq: 9 }), { table: 't', conflict, seq: 9 });
      expect(dumpDatabase(replica), conflict).toEqual(before);
      expect(replica.isTransaction).toBe(false);
    }
  });

  it('err: a conflict in a later table rolls back the earlier tables too', () => {
    const db = source(`${BASE_SQL} CREATE TABLE z(k TEXT PRIMARY KEY, v);`);
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc'); INSERT INTO z VALUES ('k', 1)`));
    const replica = replicaOf(source(`${BASE_SQL} CREATE TABLE z(k TEXT PRIMARY KEY, v);`), `INSERT INTO z VALUES ('k', 2)`);
    const before = dumpDatabase(replica);
    expectConflict(() => applyChangesetExactly(replica, changeset), { table: 'z', conflict: 'CONFLICT' });
    expect(dumpDatabase(replica)).toEqual(before);
  });

  it('err: a patchset → CHANGESET_KIND_UNSUPPORTED; garbage → CHANGESET_MALFORMED; misuse → TypeError', () => {
    const db = source();
    const session = db.createSession();
    db.exec(`UPDATE t SET v = 'p' WHERE id = 1`);
    const patchset = session.patchset();
    session.close();
    expect(() => applyChangesetExactly(db, patchset)).toThrow(expect.objectContaining({ code: 'CHANGESET_KIND_UNSUPPORTED' }));
    expect(() => applyChangesetExactly(db, Uint8Array.of(0x54, 0x00))).toThrow(expect.objectContaining({ code: 'CHANGESET_MALFORMED' }));
    expect(() => applyChangesetExactly(db, 'x' as unknown as Uint8Array)).toThrow(TypeError);
    const narrow = captureTransaction(db, () => db.exec(`INSERT INTO log(what) VALUES ('n')`));
    db.exec('ALTER TABLE log ADD COLUMN extra');
    const wide = captureTransaction(db, () => db.exec(`INSERT INTO log(what) VALUES ('w')`));
    const twoShapes = new Uint8Array([...narrow, ...wide]);
    expect(() => applyChangesetExactly(db, twoShapes)).toThrow(expect.objectContaining({ code: 'CHANGESET_MALFORMED' }));
    db.exec('BEGIN');
    expect(() => applyChangesetExactly(db, new Uint8Array(0))).toThrow(TypeError);
    db.exec('ROLLBACK');
  });

  it('ok: beforeCommit runs inside the transaction; err: if it throws, nothing is applied', () => {
    const db = source();
    const replica = replicaOf(db, 'CREATE TABLE applied(seq INTEGER PRIMARY KEY)');
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc')`));
    const before = dumpDatabase(replica);
    expect(() => applyChangesetExactly(replica, changeset, { beforeCommit: () => { throw new Error('disk full'); } })).toThrow('disk full');
    expect(dumpDatabase(replica)).toEqual(before);
    applyChangesetExactly(replica, changeset, {
      beforeCommit: (target) => {
        expect(target.isTransaction).toBe(true);
        target.prepare('INSERT INTO applied VALUES (?)').run(1);
      },
    });
    expect(replica.prepare('SELECT seq FROM applied').all()).toEqual([{ seq: 1 }]);
    expect(replica.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3 });
  });

  it('err: checkForeignKeys refuses an undo that would orphan rows', () => {
    const db = source(`CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id));`);
    const addParent = captureTransaction(db, () => db.exec('INSERT INTO p VALUES (1)'));
    captureTransaction(db, () => db.exec('INSERT INTO c VALUES (10, 1)'));
    const before = dumpDatabase(db);
    expectConflict(() => applyChangesetExactly(db, addParent, { invert: true, checkForeignKeys: true, seq: 1 }), {
      table: 'c', conflict: 'FOREIGN_KEY', seq: 1,
    });
    expect(dumpDatabase(db)).toEqual(before);
    applyChangesetExactly(db, addParent, { invert: true });
    expect(db.prepare('PRAGMA foreign_key_check').all()).toHaveLength(1);
  });
});

describe('applyChangesetExactlyInTransaction', () => {
  it('ok: applies inside the caller\'s transaction, visible to the caller\'s session', () => {
    const db = source();
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO t VALUES (3, 'c', 'uc')`));
    const target = replicaOf(db, 'PRAGMA foreign_keys = OFF');
    const before = replicaOf(target);
    target.exec('BEGIN IMMEDIATE');
    const session = target.createSession();
    applyChangesetExactlyInTransaction(target, changeset, { invert: true });
    const recorded = session.changeset();
    session.close();
    target.exec('COMMIT');
    applyChangesetExactly(before, recorded);
    expect(dumpDatabase(before)).toEqual(dumpDatabase(target));
    expect(target.prepare(`SELECT count(*) AS n FROM t`).get()).toEqual({ n: 2 });
  });

  it('err: a conflict rolls back only the apply; the caller\'s transaction and earlier work stay', () => {
    const db = source();
    const changeset = captureTransaction(db, () => db.exec(`UPDATE t SET v = 'x' WHERE id = 1`));
    const target = replicaOf(db, `PRAGMA foreign_keys = OFF; UPDATE t SET v = 'diverged' WHERE id = 1`);
    target.exec('BEGIN IMMEDIATE');
    target.exec(`INSERT INTO t VALUES (9, 'mine', 'u9')`);
    const before = dumpDatabase(target);
    expectConflict(() => applyChangesetExactlyInTransaction(target, changeset), { table: 't', conflict: 'DATA' });
    expect(target.isTransaction).toBe(true);
    expect(dumpDatabase(target)).toEqual(before);
    target.exec('ROLLBACK');
  });

  it('err: preconditions are TypeErrors', () => {
    const db = source();
    expect(() => applyChangesetExactlyInTransaction(db, new Uint8Array(0))).toThrow(TypeError);
    db.exec('BEGIN');
    expect(() => applyChangesetExactlyInTransaction(db, new Uint8Array(0))).toThrow(TypeError); // foreign keys on
    db.exec('ROLLBACK');
  });
});

describe('applyEntryExactly', () => {
  it('ok: a non-deterministic migration is replayed to the source\'s rows, where re-running its SQL is not', () => {
    const db = source(`CREATE TABLE r(id INTEGER PRIMARY KEY, v); INSERT INTO r(id) VALUES (1), (2), (3);`);
    const replica = replicaOf(db);
    const naive = replicaOf(db);
    const sql = `ALTER TABLE r ADD COLUMN w INTEGER DEFAULT 0; UPDATE r SET v = random(), w = abs(random()) % 1000;
      CREATE TABLE fresh(k TEXT PRIMARY KEY, at); INSERT INTO fresh VALUES ('a', randomblob(4));`;
    const entry = migrateSource(db, sql, 4);
    applyEntryExactly(replica, entry);
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(db));
    naive.exec(sql);
    expect(dumpDatabase(naive)).not.toEqual(dumpDatabase(db));
  });

  it('ok: a migration whose script renames a written table keeps the script\'s (deterministic) effects', () => {
    const db = source(`CREATE TABLE kv(k TEXT PRIMARY KEY NOT NULL, v); INSERT INTO kv VALUES ('a', 1);`);
    const replica = replicaOf(db);
    const entry = migrateSource(db, `CREATE TABLE kv2(k TEXT PRIMARY KEY NOT NULL, v, n DEFAULT 0); INSERT INTO kv2(k, v) SELECT k, v FROM kv;
      DROP TABLE kv; ALTER TABLE kv2 RENAME TO kv;`, 2);
    expect(entry.changeset.byteLength).toBe(0);
    applyEntryExactly(replica, entry);
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(db));
    expectConflict(() => applyEntryExactly(replicaOf(db), { ...entry, changeset: captureTransaction(db, () => db.exec(`UPDATE kv SET v = 2`)) }), {
      conflict: 'UNRECORDABLE_MIGRATION', seq: 2,
    });
  });

  it('err: a failing script → SQLITE_ERROR, nothing changed; misuse → TypeError', () => {
    const db = source();
    const before = dumpDatabase(db);
    expect(() => applyEntryExactly(db, { kind: 'schema', sql: 'CREATE TABLE ok1(a PRIMARY KEY); CREATE TABLE t(x)', changeset: new Uint8Array(0) }))
      .toThrow(expect.objectContaining({ code: 'SQLITE_ERROR' }));
    expect(dumpDatabase(db)).toEqual(before);
    expect(() => applyEntryExactly(db, { kind: 'schema', changeset: new Uint8Array(0) })).toThrow(TypeError);
    expect(() => applyEntryExactly(db, { kind: 'resync' as 'write', changeset: new Uint8Array(0) })).toThrow(TypeError);
  });
});

describe('naive db.applyChangeset (why the exact path exists)', () => {
  it('diverges: an ON DELETE CASCADE fires again and the changeset\'s own child deletes hit NOTFOUND', () => {
    const db = source(SCHEMA_SQL);
    db.exec(`INSERT INTO authors VALUES (1, 'ann', NULL); INSERT INTO posts(id, author_id, title, body) VALUES (10, 1, 'alpha', 'beta gamma');`);
    const naive = replicaOf(db);
    const exact = replicaOf(db);
    const changeset = captureTransaction(db, () => db.exec('DELETE FROM authors WHERE id = 1'));
    const conflicts: number[] = [];
    const applied = naive.applyChangeset(changeset, { onConflict: (type) => { conflicts.push(type); return constants.SQLITE_CHANGESET_ABORT; } });
    expect(applied).toBe(false);
    expect(conflicts).toEqual([constants.SQLITE_CHANGESET_NOTFOUND]);
    applyChangesetExactly(exact, changeset);
    expect(dumpDatabase(exact)).toEqual(dumpDatabase(db));
  });

  it('diverges: triggers fire again and the audit table gets duplicate rows', () => {
    const db = source(SCHEMA_SQL);
    db.exec(`INSERT INTO authors VALUES (1, 'ann', NULL)`);
    const naive = replicaOf(db, '', { defensive: false }); // else writing FTS5 shadow tables fails outright
    const changeset = captureTransaction(db, () => db.exec(`INSERT INTO audit(tbl, op) VALUES ('note', 'manual');
      INSERT INTO posts(id, author_id, title, body) VALUES (10, 1, 'alpha', 'beta gamma')`));
    naive.applyChangeset(changeset, { onConflict: () => constants.SQLITE_CHANGESET_OMIT });
    const audit = (d: DatabaseSync) => d.prepare(`SELECT tbl, op, row_key FROM audit ORDER BY id`).all().map((row) => Object.values(row).join(':'));
    expect(audit(db)).toEqual(['note:manual:', 'posts:insert:10']);
    expect(audit(naive)).toEqual(['note:manual:', 'posts:insert:10', 'posts:insert:10']);
  });
});
