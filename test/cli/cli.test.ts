/** The command line, run as a real process against the built package (dist/cli/main.js). */
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function database(sql = 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)'): string {
  const path = join(tempDir('ct-cli-'), 'app.db');
  const db = new DatabaseSync(path);
  db.exec(sql);
  db.close();
  return path;
}

describe('changetrail CLI', () => {
  it('ok: init, exec, log --json (NDJSON), show --json, status --json', () => {
    const path = database();
    expect(cli('init', path, '--json').code).toBe(0);
    const exec1 = cli('exec', path, `INSERT INTO t VALUES (1, 'ada'), (2, 'bob')`, '-m', 'seed', '--actor', 'cli-test', '--json');
    expect(exec1.code, exec1.stderr).toBe(0);
    expect(JSON.parse(exec1.stdout)).toMatchObject({ seq: 1, actor: 'cli-test', message: 'seed', tables: [{ table: 't', inserts: 2 }] });
    expect(cli('exec', path, `UPDATE t SET name = 'Bob' WHERE id = 2`).code).toBe(0);

    const log = cli('log', path, '--json');
    const lines = log.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((l) => l.seq)).toEqual([1, 2]);
    expect(Object.keys(lines[0]).sort()).toEqual(['actor', 'hash', 'kind', 'message', 'prevHash', 'seq', 'tables', 'time'].sort());
    expect(lines[1].prevHash).toBe(lines[0].hash);

    const show = JSON.parse(cli('show', path, '2', '--json').stdout);
    expect(show.changes).toEqual([{ table: 't', op: 'update', indirect: false, key: { id: 2 }, before: { name: 'bob' }, after: { name: 'Bob' } }]);

    const status = JSON.parse(cli('status', path, '--json').stdout);
    expect(status).toMatchObject({ headSeq: 2, journalMode: 'delete', lock: null });

    const undo = cli('undo', path, '2', '--json');
    expect(undo.code, undo.stderr).toBe(0);
    expect(JSON.parse(undo.stdout)).toMatchObject({ seq: 3, undoes: 2, message: 'undo #2' });
    expect(JSON.parse(cli('show', path, '3', '--json').stdout).changes[0]).toMatchObject({ op: 'update', before: { name: 'Bob' }, after: { name: 'bob' } });
    // Entry 3 restored 'bob', so entry 1 (the inserts) can be undone; a second undo finds the rows gone.
    expect(JSON.parse(cli('undo', path, '1', '--json').stdout)).toMatchObject({ seq: 4, undoes: 1, tables: [{ table: 't', deletes: 2 }] });
    const again = cli('undo', path, '1', '--json');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error).toMatchObject({ code: 'CHANGESET_CONFLICT', details: { table: 't' } });
  });

  it('err: undo across a later migration of its table is UNDO_UNSUPPORTED, with a hint that fits', () => {
    const path = database();
    cli('init', path);
    cli('exec', path, `INSERT INTO t VALUES (1, 'ada')`);
    const migration = join(tempDir('ct-cli-'), 'v2.sql');
    writeFileSync(migration, 'ALTER TABLE t ADD COLUMN email TEXT');
    expect(cli('migrate', path, migration).code).toBe(0);
    const undo = cli('undo', path, '1', '--json');
    expect(undo.code).toBe(1);
    const { error } = JSON.parse(undo.stderr);
    expect(error).toMatchObject({ code: 'UNDO_UNSUPPORTED', details: { seq: 1, table: 't', reason: 'schema changed since' } });
    expect(error.hint).toContain(`changetrail exec ${path}`);
    const human = cli('undo', path, '1');
    expect(human.stderr).toMatch(/^changetrail: UNDO_UNSUPPORTED: .*\nhint: this entry cannot be reversed row by row/);
    expect(human.stderr).not.toMatch(/undo those first|reverse a migration/);
  });

  it('ok: recover of a database one entry behind says "1 entry replayed"', () => {
    const path = database();
    cli('init', path);
    const copy = join(tempDir('ct-cli-'), 'nightly.db');
    expect(cli('backup', path, copy).code).toBe(0);
    cli('exec', path, `INSERT INTO t VALUES (1, 'ada')`);
    copyFileSync(copy, path);
    const recovered = cli('recover', path);
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toMatch(/rolled forward from entry 0 to entry 1 \(1 entry replayed\)/);
  });

  it('err: blame of a table the database does not have is a usage error, not an empty answer; a point not found has a hint', () => {
    const path = database();
    cli('init', path);
    cli('exec', path, `INSERT INTO t VALUES (1, 'ada')`);
    expect(cli('log', '--help').stdout).toContain('--kind <write|schema|resync|checkpoint>');
    const missing = cli('blame', path, 'nosuch', '--json');
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'CLI_USAGE' });
    expect(cli('blame', path, 't', '--where', '99').stdout).toBe('no row t ["99"] at the head\n');
    expect(cli('blame', path, 't', '--where', '1', '--json').code).toBe(0);
    const restore = cli('restore', path, '--at', '99', '-o', join(tempDir('ct-cli-'), 'x.db'), '--json');
    expect(restore.code).toBe(1);
    expect(JSON.parse(restore.stderr).error).toMatchObject({ code: 'POSITION_NOT_FOUND', hint: expect.stringContaining(`changetrail log ${path}`) });
  });

  it('ok: human output and a write that changes nothing', () => {
    const path = database();
    cli('init', path);
    expect(cli('exec', path, `DELETE FROM t WHERE id = 99`).stdout).toContain('no changes');
    cli('exec', path, `INSERT INTO t VALUES (1, 'ada')`, '-m', 'hello');
    expect(cli('log', path).stdout).toContain('hello');
    expect(cli('status', path).stdout).toMatch(/head\s+entry 1/);
  });

  it('err: refusals carry their code and exit 1; usage errors exit 2', () => {
    const path = database();
    cli('init', path);
    const ddl = cli('exec', path, 'CREATE TABLE u(x)', '--json');
    expect(ddl.code).toBe(1);
    expect(JSON.parse(ddl.stderr).error.code).toBe('SCHEMA_CHANGE_IN_WRITE');
    const missing = cli('show', path, '7', '--json');
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: 7, headSeq: 0 } });
    expect(cli('log', path, '--bogus').code).toBe(2);
    expect(cli('frobnicate', path).code).toBe(2);
    expect(cli('show', path, 'abc').code).toBe(2);
    const untracked = cli('log', database(), '--json');
    expect(untracked.code).toBe(2);
    expect(JSON.parse(untracked.stderr).error.code).toBe('CLI_USAGE');
  });

  it('ok: a hostile table name is shown and quoted harmlessly', () => {
    const path = database(`CREATE TABLE "a""; DROP TABLE x; --"(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE x(id INTEGER PRIMARY KEY)`);
    cli('init', path);
    expect(cli('exec', path, `INSERT INTO "a""; DROP TABLE x; --" VALUES (1, 'o''clock')`).code).toBe(0);
    const show = JSON.parse(cli('show', path, '1', '--json').stdout);
    expect(show.changes[0]).toMatchObject({ table: 'a"; DROP TABLE x; --', after: { id: 1, v: "o'clock" } });
  });

  it('ok: migrate <file.sql> journals a schema entry; resync records a foreign change', () => {
    const path = database();
    cli('init', path);
    const file = join(tempDir('ct-sql-'), 'm1.sql');
    writeFileSync(file, 'ALTER TABLE t ADD COLUMN email TEXT;\nCREATE INDEX t_email ON t(email);\n');
    const migrated = cli('migrate', path, file, '-m', 'add email', '--json');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ seq: 1, kind: 'schema', message: 'add email', sql: expect.stringContaining('ADD COLUMN email') });
    expect(cli('exec', path, `INSERT INTO t VALUES (1, 'ada', 'ada@x')`).code).toBe(0);
    expect(cli('migrate', path, join(file, 'missing.sql')).code).toBe(2);

    const foreign = new DatabaseSync(path);
    foreign.exec(`UPDATE t SET email = 'changed@x'`);
    foreign.close();
    const verify = cli('verify', path, '--replay', '--json');
    expect(verify.code).toBe(1);
    expect(JSON.parse(verify.stderr).error.code).toBe('FOREIGN_WRITE_DETECTED');
    const resynced = cli('resync', path, '-m', 'accept manual fix', '--json');
    expect(resynced.code, resynced.stderr).toBe(0);
    expect(JSON.parse(resynced.stdout)).toMatchObject({ seq: 3, kind: 'resync', snapshot: { file: 'snapshot-3.db' } });
    expect(JSON.parse(cli('verify', path, '--replay', '--json').stdout)).toMatchObject({ headSeq: 3, entries: 3, replayed: true });
  });

  it('ok: unlock refuses nothing when the lock is free, and --help works', () => {
    const path = database();
    cli('init', path);
    expect(JSON.parse(cli('unlock', path, '--json').stdout)).toEqual({ broken: false, lock: null });
    expect(cli('--help').stdout).toContain('usage: changetrail');
  });
});
