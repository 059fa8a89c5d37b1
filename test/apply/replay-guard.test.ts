/**
 * The replay guard against the actual attack (issue 9 §2.1): a forged schema entry with a valid CRC and
 * chain that ATTACHes another database and deletes from it, run by `verify --replay` through the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { runUntrustedSql, UNTRUSTED_SQL_SIZE_MAX } from '../../src/apply/replay-guard.js';
import { forgeEntry } from '../helpers/forge.js';
import { tempDir, tempTrail } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function victim(): string {
  const path = join(tempDir('ct-victim-'), 'victim.db');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE secrets(id INTEGER PRIMARY KEY, s TEXT); INSERT INTO secrets VALUES (1, 'a'), (2, 'b');`);
  db.close();
  return path;
}

function secretCount(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(db.prepare('SELECT count(*) AS n FROM secrets').get()!.n);
  } finally {
    db.close();
  }
}

function refusal(db: DatabaseSync, sql: string): unknown {
  try {
    db.exec('BEGIN IMMEDIATE');
    runUntrustedSql(db, sql, 9);
    return null;
  } catch (error) {
    return error instanceof ChangetrailError ? { code: error.code, details: error.details } : error;
  } finally {
    if (db.isTransaction) db.exec('ROLLBACK');
  }
}

describe('verify --replay of a forged schema entry', () => {
  it('err: ATTACH + DELETE from another database is REPLAY_REFUSED and the victim is untouched', async () => {
    const target = victim();
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'one')`));
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'two')`));
    await trail.close();
    forgeEntry(path, 2, (raw) => {
      raw.kind = 'schema';
      raw.sql = `ATTACH '${target}' AS v; DELETE FROM v.secrets;`;
      raw.tables = [];
      raw.changeset = new Uint8Array(0);
    });
    const cli = spawnSync(process.execPath, [MAIN, 'verify', path, '--replay', '--json'], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(1);
    expect(JSON.parse(cli.stderr).error).toMatchObject({ code: 'REPLAY_REFUSED', details: { action: 'ATTACH', seq: 2 } });
    expect(secretCount(target)).toBe(2);

    const reopened = await openTrail(path);
    try {
      const error = await reopened.verify({ replay: true }).then(() => null, (e: unknown) => e);
      expect(ChangetrailError.is(error, 'REPLAY_REFUSED')).toBe(true);
    } finally {
      await reopened.close();
    }
    expect(secretCount(target)).toBe(2);
  });
});

describe('runUntrustedSql', () => {
  it('ok: DDL, DML on main and file-header pragmas run; PRAGMA foreign_keys is ignored', () => {
    const db = new DatabaseSync(':memory:');
    expect(refusal(db, `CREATE TABLE a(id INTEGER PRIMARY KEY, x); INSERT INTO a VALUES (1, 2); ALTER TABLE a ADD COLUMN y;
      CREATE INDEX a_x ON a(x); CREATE TRIGGER a_t AFTER INSERT ON a BEGIN UPDATE a SET y = 1 WHERE id = new.id; END;
      CREATE VIRTUAL TABLE f USING fts5(body); PRAGMA user_version = 5; PRAGMA foreign_keys = ON; SELECT * FROM pragma_table_info('a');
      SAVEPOINT s; RELEASE s;`)).toBeNull();
    db.exec('PRAGMA foreign_keys = OFF; BEGIN');
    runUntrustedSql(db, 'CREATE TABLE a(id INTEGER PRIMARY KEY); PRAGMA user_version = 5; PRAGMA foreign_keys = ON');
    db.exec('COMMIT');
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 5 });
    expect(db.prepare('PRAGMA foreign_keys').get()).toEqual({ foreign_keys: 0 });
    // Outside runUntrustedSql the guard lets the replay's own statements through.
    db.exec('PRAGMA foreign_keys = ON; CREATE TEMP TABLE mine(x)');
    db.close();
  });

  it('err: every escape hatch is REPLAY_REFUSED with the action', () => {
    const path = victim();
    const db = new DatabaseSync(join(tempDir(), 'target.db'));
    db.exec('CREATE TABLE a(id INTEGER PRIMARY KEY)');
    const cases: [string, string][] = [
      [`ATTACH '${path}' AS v`, 'ATTACH'],
      [`SELECT load_extension('/tmp/x.so')`, 'load_extension()'],
      ['PRAGMA journal_mode = OFF', 'PRAGMA journal_mode'],
      ['PRAGMA writable_schema = 1', 'PRAGMA writable_schema'],
      ['PRAGMA trusted_schema = 1', 'PRAGMA trusted_schema'],
      ['PRAGMA schema_version = 99', 'PRAGMA schema_version'],
      ['CREATE TEMP TRIGGER tt AFTER INSERT ON main.a BEGIN SELECT 1; END', 'TEMP'],
      ['CREATE TEMP TABLE x(y)', 'write temp.sqlite_temp_master'],
      ['COMMIT', 'COMMIT'],
      ['WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c', 'WITH RECURSIVE'],
      ['CREATE VIRTUAL TABLE s USING dbstat', 'USING dbstat'],
      ['SAVEPOINT changetrail_apply', 'SAVEPOINT changetrail_apply'],
    ];
    for (const [sql, action] of cases) {
      expect(refusal(db, sql), sql).toMatchObject({ code: 'REPLAY_REFUSED', details: { action, seq: 9 } });
    }
    expect(refusal(db, `SELECT '${'x'.repeat(UNTRUSTED_SQL_SIZE_MAX)}'`)).toMatchObject({ code: 'REPLAY_REFUSED', details: { action: 'SQL' } });
    expect(db.prepare(`SELECT count(*) AS n FROM pragma_database_list`).get()).toEqual({ n: 1 });
    db.close();
    expect(secretCount(path)).toBe(2);
  });
});
