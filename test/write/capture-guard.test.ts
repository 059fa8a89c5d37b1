import { describe, expect, it } from 'vitest';
import type { DatabaseSync } from 'node:sqlite';
import { applyChangesetExactly } from '../../src/apply/apply-entry.js';
import { createSchemaReader } from '../../src/apply/schema.js';
import { ChangetrailError } from '../../src/errors.js';
import { installCaptureGuard, type CaptureGuard } from '../../src/write/capture-guard.js';
import { copyDatabase, dumpDatabase, openDb, tempPath } from '../apply/helpers.js';

const SCHEMA_SQL = `
CREATE TABLE t(id INTEGER PRIMARY KEY, v);
CREATE TABLE nopk(a, b);
CREATE TABLE nk(k TEXT PRIMARY KEY, v);
CREATE TABLE comp(a, b NOT NULL, v, PRIMARY KEY(b, a));
CREATE TABLE log(id INTEGER PRIMARY KEY, what);
CREATE TABLE feeds_nopk(id INTEGER PRIMARY KEY, v);
CREATE TRIGGER feeds_nopk_ai AFTER INSERT ON feeds_nopk BEGIN INSERT INTO nopk VALUES (new.id, new.v); END;
CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN INSERT INTO log(what) VALUES ('t+' || new.id); END;
CREATE TABLE parent(id INTEGER PRIMARY KEY);
CREATE TABLE orphanable(pid REFERENCES parent(id) ON DELETE CASCADE, note);
CREATE TABLE _changetrail_head(id INTEGER PRIMARY KEY, seq);
CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id');
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts(rowid, body) VALUES (new.id, new.body); END;
CREATE VIEW t_view AS SELECT id, v FROM t;
CREATE TRIGGER t_view_ii INSTEAD OF INSERT ON t_view BEGIN INSERT INTO t VALUES (new.id, new.v); END;
INSERT INTO t VALUES (1, 'one');
INSERT INTO parent VALUES (1);
INSERT INTO orphanable VALUES (1, 'x');
INSERT INTO _changetrail_head VALUES (1, 0);
`;

interface Env {
  db: DatabaseSync;
  guard: CaptureGuard;
  path: string;
}

function setup(): Env {
  const path = tempPath();
  const db = openDb(path);
  db.exec(SCHEMA_SQL);
  return { db, guard: installCaptureGuard(db, createSchemaReader(db)), path };
}

/** The write path in miniature: BEGIN IMMEDIATE, session, guarded body, changeset, COMMIT; ROLLBACK on error. */
function write(env: Env, body: (db: DatabaseSync) => void): Uint8Array {
  const { db, guard } = env;
  db.exec('BEGIN IMMEDIATE');
  const session = db.createSession();
  try {
    guard.run('write', () => body(db));
    // FTS5 flushes pending terms into its shadow tables when changeset() opens its savepoint: that must
    // happen in a mode that may write them.
    const changeset = guard.run('internal', () => session.changeset());
    db.exec('COMMIT');
    return changeset;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  } finally {
    session.close();
  }
}

/** Asserts that `fn` throws a ChangetrailError with `code` and `details`, and that the database did not change. */
function expectRefused(env: Env, fn: () => unknown, code: string, details: Record<string, unknown>): void {
  const before = dumpDatabase(env.db);
  const userVersion = env.db.prepare('PRAGMA user_version').get();
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a refusal').toBeInstanceOf(ChangetrailError);
  expect((caught as ChangetrailError).code, String(caught)).toBe(code);
  expect((caught as ChangetrailError).details).toEqual(details);
  expect(env.db.isTransaction).toBe(false);
  expect(dumpDatabase(env.db)).toEqual(before);
  expect(env.db.prepare('PRAGMA user_version').get()).toEqual(userVersion);
}

describe('installCaptureGuard: write mode', () => {
  it('ok: writes to capturable tables, through triggers, views, FTS5 and temp tables commit and replay exactly', () => {
    const env = setup();
    const replica = openDb(copyDatabase(env.db));
    const changeset = write(env, (db) => {
      db.exec(`INSERT INTO t VALUES (2, 'two'); INSERT INTO t_view VALUES (3, 'three'); INSERT INTO nk VALUES ('k', 1)`);
      db.exec(`INSERT INTO comp VALUES (1, 2, 3); INSERT INTO docs(body) VALUES ('hello world')`);
      db.exec(`CREATE TEMP TABLE scratch(x); INSERT INTO scratch VALUES (1); SAVEPOINT s; UPDATE t SET v = 'uno' WHERE id = 1; RELEASE s`);
      // A temp trigger is connection-private; what it writes to main tables is recorded like any trigger's.
      db.exec(`CREATE TEMP TRIGGER spy AFTER DELETE ON main.t BEGIN INSERT INTO log(what) VALUES ('spy'); END; DELETE FROM t WHERE id = 3`);
      db.prepare('SELECT * FROM t').all();
    });
    applyChangesetExactly(replica, changeset);
    expect(dumpDatabase(replica)).toEqual(dumpDatabase(env.db));
    expect(replica.prepare(`SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'hello'`).all()).toEqual([{ rowid: 1 }]);
  });

  it('err: DDL → SCHEMA_CHANGE_IN_WRITE, nothing changed', () => {
    const env = setup();
    const cases: [string, string][] = [
      ['CREATE TABLE z(id INTEGER PRIMARY KEY)', 'CREATE TABLE z'],
      ['CREATE INDEX t_v ON t(v)', 'CREATE INDEX t_v'],
      ['DROP TABLE log', 'DROP TABLE log'],
      ['ALTER TABLE t ADD COLUMN w', 'ALTER TABLE t'],
      ['CREATE TRIGGER tr AFTER DELETE ON t BEGIN SELECT 1; END', 'CREATE TRIGGER tr'],
      ['CREATE VIEW v2 AS SELECT 1', 'CREATE VIEW v2'],
      ['DROP VIEW t_view', 'DROP VIEW t_view'],
      ['CREATE VIRTUAL TABLE f2 USING fts5(x)', 'CREATE VTABLE f2'],
      ['ANALYZE', 'CREATE TABLE sqlite_stat1'],
      ['PRAGMA user_version = 7', 'PRAGMA user_version'],
    ];
    for (const [sql, statement] of cases) {
      expectRefused(env, () => write(env, (db) => db.exec(`INSERT INTO t VALUES (50, 'x'); ${sql}`)), 'SCHEMA_CHANGE_IN_WRITE', { statement });
    }
  });

  it('err: a table without PRIMARY KEY → TABLE_NOT_CAPTURABLE, directly, through a trigger and through an FK cascade', () => {
    const env = setup();
    const refused = { table: 'nopk', reason: 'no primary key' };
    expectRefused(env, () => write(env, (db) => db.exec(`INSERT INTO nopk VALUES (1, 2)`)), 'TABLE_NOT_CAPTURABLE', refused);
    expectRefused(env, () => write(env, (db) => db.exec(`UPDATE nopk SET b = 3`)), 'TABLE_NOT_CAPTURABLE', refused);
    expectRefused(env, () => write(env, (db) => db.exec(`INSERT INTO feeds_nopk VALUES (1, 2)`)), 'TABLE_NOT_CAPTURABLE', refused);
    expectRefused(env, () => write(env, (db) => db.exec(`DELETE FROM parent WHERE id = 1`)), 'TABLE_NOT_CAPTURABLE', {
      table: 'orphanable', reason: 'no primary key',
    });
  });

  it('err: a NULL key → NULL_PRIMARY_KEY, by INSERT, by UPDATE, in a composite key', () => {
    const env = setup();
    expectRefused(env, () => write(env, (db) => db.exec(`INSERT INTO nk VALUES (NULL, 1)`)), 'NULL_PRIMARY_KEY', { table: 'nk' });
    write(env, (db) => db.exec(`INSERT INTO nk VALUES ('a', 1)`));
    expectRefused(env, () => write(env, (db) => db.exec(`UPDATE nk SET k = NULL WHERE k = 'a'`)), 'NULL_PRIMARY_KEY', { table: 'nk' });
    expectRefused(env, () => write(env, (db) => db.prepare(`INSERT INTO comp VALUES (?, ?, ?)`).run(null, 1, 2)), 'NULL_PRIMARY_KEY', { table: 'comp' });
  });

  it('err: a write to an attached database → TABLE_NOT_CAPTURABLE; the attached file is unchanged', () => {
    const env = setup();
    const auxPath = tempPath('aux.sqlite');
    const aux = openDb(auxPath);
    aux.exec('CREATE TABLE a(id INTEGER PRIMARY KEY, v); INSERT INTO a VALUES (1, 1)');
    aux.close();
    env.guard.run('internal', () => env.db.exec(`ATTACH '${auxPath}' AS aux`));
    expectRefused(env, () => write(env, (db) => db.exec(`UPDATE aux.a SET v = 2`)), 'TABLE_NOT_CAPTURABLE', {
      table: 'aux.a', reason: 'attached database',
    });
    expect(env.db.prepare('SELECT v FROM aux.a').get()).toEqual({ v: 1 });
  });

  it('err: changetrail\'s own tables and SQLite\'s internal ones are not the user\'s to write', () => {
    const env = setup();
    expectRefused(env, () => write(env, (db) => db.exec(`UPDATE _changetrail_head SET seq = 9`)), 'TABLE_NOT_CAPTURABLE', {
      table: '_changetrail_head', reason: 'changetrail table',
    });
    env.guard.run('internal', () => env.db.exec('CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO auto VALUES (NULL)'));
    expectRefused(env, () => write(env, (db) => db.exec(`UPDATE sqlite_sequence SET seq = 100`)), 'TABLE_NOT_CAPTURABLE', {
      table: 'sqlite_sequence', reason: 'sqlite internal table',
    });
  });

  it('err: COMMIT inside the body → STATEMENT_NOT_ALLOWED', () => {
    const env = setup();
    expectRefused(env, () => write(env, (db) => db.exec(`INSERT INTO t VALUES (9, 'x'); COMMIT`)), 'STATEMENT_NOT_ALLOWED', {
      mode: 'write', action: 'COMMIT',
    });
  });

  it('err: a refusal the body catches still fails the write', () => {
    const env = setup();
    expectRefused(env, () => write(env, (db) => {
      db.exec(`INSERT INTO t VALUES (9, 'x')`);
      try {
        db.exec('CREATE TABLE sneaky(x)');
      } catch {
        // swallowed on purpose
      }
    }), 'SCHEMA_CHANGE_IN_WRITE', { statement: 'CREATE TABLE sneaky' });
  });

  it('err: statements prepared in another mode are checked again when they run', () => {
    const env = setup();
    const cached = env.guard.run('internal', () => env.db.prepare('INSERT INTO nopk VALUES (?, ?)'));
    expectRefused(env, () => write(env, () => cached.run(1, 2)), 'TABLE_NOT_CAPTURABLE', { table: 'nopk', reason: 'no primary key' });
    let leaked: ReturnType<DatabaseSync['prepare']> | undefined;
    write(env, (db) => {
      leaked = db.prepare(`UPDATE t SET v = ? WHERE id = 1`);
      leaked.run('in write');
    });
    expectRefused(env, () => leaked?.run('outside'), 'STATEMENT_NOT_ALLOWED', { mode: 'idle', action: 'UPDATE', table: 't' });
  });

  it('err: statements compiled in a laxer mode are checked again in a stricter one, whatever ran in between', () => {
    const env = setup();
    const attached = tempPath('aux2.sqlite');
    env.guard.run('internal', () => env.db.exec(`ATTACH '${attached}' AS aux; CREATE TABLE aux.a(id INTEGER PRIMARY KEY)`));
    // Compiled in 'idle' (where transaction control and attached writes are allowed), run inside a write.
    const commit = env.db.prepare('COMMIT');
    const toAux = env.db.prepare('INSERT INTO aux.a VALUES (?)');
    expectRefused(env, () => write(env, () => commit.run()), 'STATEMENT_NOT_ALLOWED', { mode: 'write', action: 'COMMIT' });
    expectRefused(env, () => write(env, () => toAux.run(1)), 'TABLE_NOT_CAPTURABLE', { table: 'aux.a', reason: 'attached database' });
    // Compiled in 'migrate', run inside a write after changetrail's own 'internal' bookkeeping.
    let index: ReturnType<DatabaseSync['prepare']> | undefined;
    env.db.exec('BEGIN IMMEDIATE');
    env.guard.run('migrate', () => {
      index = env.db.prepare('CREATE INDEX t_v ON t(v)');
    });
    env.guard.run('internal', () => env.db.prepare('UPDATE _changetrail_head SET seq = seq').run());
    expect(() => env.guard.run('write', () => index?.run())).toThrow(expect.objectContaining({ code: 'SCHEMA_CHANGE_IN_WRITE' }));
    env.db.exec('ROLLBACK');
  });

  it('err: a NULL key stored by a statement cached from an earlier write of the same transaction → NULL_PRIMARY_KEY', () => {
    const env = setup();
    let insert: ReturnType<DatabaseSync['prepare']> | undefined;
    expectRefused(env, () => write(env, (db) => {
      env.guard.run('internal', () => {
        env.guard.run('write', () => {
          insert = db.prepare('INSERT INTO nk VALUES (?, ?)');
          insert.run('a', 1);
        });
        env.guard.run('write', () => insert?.run(null, 2));
      });
    }), 'NULL_PRIMARY_KEY', { table: 'nk' });
  });

  it('err: a temp trigger on changetrail\'s tables → TABLE_NOT_CAPTURABLE in every mode but internal', () => {
    const env = setup();
    const trigger = 'CREATE TEMP TRIGGER sneak AFTER UPDATE ON main._changetrail_head BEGIN INSERT INTO nopk VALUES (1, 1); END';
    const details = { table: '_changetrail_head', reason: 'changetrail table' };
    expectRefused(env, () => env.db.exec(trigger), 'TABLE_NOT_CAPTURABLE', details);
    expectRefused(env, () => write(env, (db) => db.exec(trigger)), 'TABLE_NOT_CAPTURABLE', details);
    env.db.exec('BEGIN IMMEDIATE');
    expect(() => env.guard.run('migrate', () => env.db.exec(trigger))).toThrow(expect.objectContaining({ code: 'TABLE_NOT_CAPTURABLE', details }));
    env.db.exec('ROLLBACK');
    expect(env.db.prepare(`SELECT count(*) AS n FROM temp.sqlite_schema WHERE name = 'sneak'`).get()).toEqual({ n: 0 });
  });

  it('err: a schema change the authorizer was told to allow is caught by the schema_version backstop', () => {
    const env = setup();
    expectRefused(env, () => write(env, (db) => env.guard.run('internal', () => db.exec('CREATE TABLE late(id INTEGER PRIMARY KEY)'))),
      'SCHEMA_CHANGE_IN_WRITE', {});
  });

  it('err: FTS5 data still pending at COMMIT (no changeset taken) is refused, not committed unrecorded', () => {
    const env = setup();
    env.db.exec('BEGIN IMMEDIATE');
    env.guard.run('write', () => env.db.exec(`INSERT INTO docs(body) VALUES ('pending words')`));
    expect(() => env.db.exec('COMMIT')).toThrow(expect.objectContaining({ code: 'STATEMENT_NOT_ALLOWED' }));
    if (env.db.isTransaction) env.db.exec('ROLLBACK');
    expect(env.db.prepare('SELECT count(*) AS n FROM docs').get()).toEqual({ n: 0 });
  });

  it('err: async bodies, unknown modes, a replaced authorizer and use after uninstall are TypeErrors', () => {
    const env = setup();
    expect(() => env.guard.run('write', async () => undefined)).toThrow(TypeError);
    expect(() => env.guard.run('bogus' as 'write', () => undefined)).toThrow(TypeError);
    expect(() => env.guard.run('write', () => env.db.setAuthorizer(() => 0))).toThrow(TypeError);
    env.guard.uninstall();
    env.guard.uninstall();
    expect(() => env.guard.run('write', () => undefined)).toThrow(TypeError);
    env.db.exec('INSERT INTO nopk VALUES (1, 1)'); // no guard any more
  });
});

describe('installCaptureGuard: other modes', () => {
  it('err: read mode refuses writes, DDL and COMMIT; reads and temp tables work', () => {
    const env = setup();
    const read = (body: (db: DatabaseSync) => unknown) => {
      env.db.exec('BEGIN');
      try {
        return env.guard.run('read', () => body(env.db));
      } finally {
        env.db.exec('ROLLBACK');
      }
    };
    expect(read((db) => db.prepare('SELECT v FROM t').all())).toEqual([{ v: 'one' }]);
    expect(read((db) => db.prepare(`SELECT count(*) AS n FROM docs_fts WHERE docs_fts MATCH 'x'`).get())).toEqual({ n: 0 });
    read((db) => db.exec('CREATE TEMP TABLE tmp(x); INSERT INTO tmp VALUES (1)'));
    expectRefused(env, () => read((db) => db.exec(`INSERT INTO t VALUES (5, 'x')`)), 'STATEMENT_NOT_ALLOWED', { mode: 'read', action: 'INSERT', table: 't' });
    expectRefused(env, () => read((db) => db.exec(`CREATE INDEX i ON t(v)`)), 'STATEMENT_NOT_ALLOWED', { mode: 'read', action: 'CREATE INDEX', table: 'i' });
    expectRefused(env, () => read((db) => db.exec(`COMMIT`)), 'STATEMENT_NOT_ALLOWED', { mode: 'read', action: 'COMMIT' });
  });

  it('err: idle mode refuses writes outside an operation but allows reads and transaction control', () => {
    const env = setup();
    expect(env.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    env.db.exec('BEGIN; COMMIT');
    expectRefused(env, () => env.db.exec(`DELETE FROM t`), 'STATEMENT_NOT_ALLOWED', { mode: 'idle', action: 'DELETE', table: 't' });
    expectRefused(env, () => env.db.exec(`PRAGMA user_version = 3`), 'STATEMENT_NOT_ALLOWED', { mode: 'idle', action: 'PRAGMA user_version' });
  });

  it('ok: migrate mode allows DDL and DML; err: transaction control and attached databases', () => {
    const env = setup();
    const migrate = (sql: string) => {
      env.db.exec('BEGIN IMMEDIATE');
      try {
        env.guard.run('migrate', () => env.db.exec(sql));
        env.db.exec('COMMIT');
      } catch (error) {
        if (env.db.isTransaction) env.db.exec('ROLLBACK');
        throw error;
      }
    };
    migrate(`ALTER TABLE t ADD COLUMN w DEFAULT 0; CREATE INDEX t_w ON t(w); UPDATE nopk SET b = 1; PRAGMA user_version = 2; ANALYZE`);
    expect(env.db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 2 });
    expectRefused(env, () => migrate('CREATE TABLE x(id INTEGER PRIMARY KEY); COMMIT'), 'STATEMENT_NOT_ALLOWED', { mode: 'migrate', action: 'COMMIT' });
    expectRefused(env, () => migrate('DROP TABLE _changetrail_head'), 'TABLE_NOT_CAPTURABLE', { table: '_changetrail_head', reason: 'changetrail table' });
    env.guard.run('internal', () => env.db.exec(`ATTACH '${tempPath('aux.sqlite')}' AS aux`));
    expectRefused(env, () => migrate('CREATE TABLE aux.y(id INTEGER PRIMARY KEY)'), 'TABLE_NOT_CAPTURABLE', { table: 'aux.y', reason: 'attached database' });
  });

  it('ok: internal mode allows everything; modes nest and restore', () => {
    const env = setup();
    env.guard.run('internal', () => {
      env.db.exec('BEGIN; INSERT INTO nopk VALUES (7, 7); UPDATE _changetrail_head SET seq = 1; COMMIT');
      expect(env.guard.run('read', () => env.guard.mode)).toBe('read');
      expect(env.guard.mode).toBe('internal');
    });
    expect(env.guard.mode).toBe('idle');
    expect(env.guard.violation).toBeNull();
  });
});
