import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import {
  changesetToRows, changesetToSql, formatSqlValue, quoteIdentifier, rowChangeToJson, SqlText, valueToJson,
  type ChangesetSchema,
} from '../../src/changeset/index.js';
import { ChangetrailError } from '../../src/errors.js';
import {
  createTables, dumpDatabase, openCopy, quoteName, randomSchema, randomWrites, Rng, runSeed, saveSnapshot, withSeed,
  Writer,
} from './workload.js';

const seed = runSeed();
const directory = mkdtempSync(join(tmpdir(), 'changetrail-sql-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The stock shell, when installed (CI machines may not have it: those checks are skipped). */
const SQLITE3_CLI = ((): string | null => {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'pipe' });
    return 'sqlite3';
  } catch {
    return null;
  }
})();

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const EXAMPLE_CHANGESET = hex(`
  54050100000000740017000100000000000000020303626f62000000000305626f626279000000090001000000000000
  000303056361726f6c02400a0000000000000401ff030178120001000000000000000403046461766502bfe00000000000
  00040001000000000000012c`);
const EXAMPLE_PATCHSET = hex(`
  50050100000000740017000100000000000000020305626f626279000000090001000000000000000312000100000000
  0000000403046461766502bfe0000000000000040001000000000000012c`);
const EXAMPLE_SCHEMA: ChangesetSchema = { t: { columns: ['id', 'name', 'score', 'data', 'note'] } };

/** Column names as `PRAGMA table_xinfo` gives them (hidden = 0). */
function schemaOf(db: DatabaseSync): ChangesetSchema {
  const writer = new Writer(db);
  const schema: ChangesetSchema = {};
  for (const [table] of writer.all("SELECT name FROM sqlite_schema WHERE type = 'table'")) {
    schema[String(table)] = { columns: writer.all('SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid', [String(table)]).map((row) => String(row[0])) };
  }
  return schema;
}

let files = 0;
function scratch(name: string): string {
  return join(directory, `${files++}-${name}`);
}

/** Runs `sql` on a copy of `state` with node:sqlite (and, when installed, the sqlite3 shell); returns the dumps. */
function runSql(state: string, sql: string): { node: string[]; cli: string[] | null } {
  const target = openCopy(DatabaseSync, state, scratch('node.db'));
  target.exec(sql);
  const node = dumpDatabase(target);
  target.close();
  if (SQLITE3_CLI === null) return { node, cli: null };
  const path = scratch('cli.db');
  openCopy(DatabaseSync, state, path).close();
  execFileSync(SQLITE3_CLI, ['-bail', path], { input: sql, stdio: ['pipe', 'pipe', 'pipe'] });
  const db = new DatabaseSync(path);
  const cli = dumpDatabase(db);
  db.close();
  return { node, cli };
}

describe('changesetToSql', () => {
  it('ok: the SQL turns the before database into the after database (node:sqlite and the sqlite3 shell)', () => {
    const rng = new Rng(seed);
    const options = { signedZero: false, longText: 0.05 };
    withSeed(seed, () => {
      for (let run = 0; run < 25; run++) {
        const db = new DatabaseSync(':memory:');
        const writer = new Writer(db);
        const tables = randomSchema(rng, { wide: run % 5 === 0 });
        createTables(rng, db, writer, tables, options);
        const before = scratch('before.db');
        saveSnapshot(db, before);
        const session = db.createSession();
        randomWrites(rng, writer, tables, rng.range(5, 40), options);
        const after = dumpDatabase(db);
        const schema = schemaOf(db);
        const [changeset, patchset] = [session.changeset(), session.patchset()];
        db.close();
        for (const bytes of [changeset, patchset]) {
          const { node, cli } = runSql(before, changesetToSql(bytes, schema));
          expect(node).toEqual(after);
          if (cli !== null) expect(cli).toEqual(after);
        }
      }
    });
  });

  it('ok: exact types and bytes for int64 extremes, -0.0, ±Infinity, subnormal REALs, NUL, newlines, invalid UTF-8, blobs', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE v(id INTEGER PRIMARY KEY, a, b REAL, c TEXT, d BLOB)');
    const before = scratch('values-before.db');
    saveSnapshot(db, before);
    const session = db.createSession();
    const insert = db.prepare('INSERT INTO v VALUES (?, ?, ?, ?, ?)');
    const values: [bigint, unknown, number, unknown, Uint8Array][] = [
      [1n, -(2n ** 63n), -0, "it's", new Uint8Array(0)],
      [2n, 2n ** 63n - 1n, Infinity, 'nul\u0000and\nnewline\r', Uint8Array.of(0, 255)],
      [3n, -Infinity, 5e-324, '日本🙂', Uint8Array.of(1)],
      [4n, 1e-300, 2.2250738585072014e-308, '', Uint8Array.of(2)],
      [5n, 0.1, 1.7976931348623157e308, 'x', Uint8Array.of(3)],
      // Two of the values the 3.40 shell misreads as 17-digit literals (see TINY_REAL_MAX in sql.ts).
      [6n, 1.8565218326171285e-301, 5.971949096882513e-308, '--', Uint8Array.of(4)],
      [8n, 4.150073824916871e-294, 1e21, '/*', Uint8Array.of(5)],
    ];
    for (const row of values) insert.run(...(row as [bigint, never, number, never, Uint8Array]));
    db.exec("INSERT INTO v VALUES (7, CAST(x'ff00fe' AS TEXT), -1e-310, CAST(x'c3' AS TEXT), x'')");
    const after = dumpDatabase(db);
    const sql = changesetToSql(session.changeset(), schemaOf(db));
    db.close();
    const { node, cli } = runSql(before, sql);
    expect(node).toEqual(after);
    if (cli !== null) expect(cli).toEqual(after);
    expect(sql.split('\n').filter((line) => line !== '').length).toBe(8);
  });

  it('ok: a hostile table name round-trips harmlessly', () => {
    const name = 'a"; DROP TABLE x; --';
    const db = new DatabaseSync(':memory:');
    db.exec(`CREATE TABLE x(id INTEGER PRIMARY KEY); INSERT INTO x VALUES (1);
      CREATE TABLE ${quoteName(name)}(${quoteName("i'd\"")} INTEGER PRIMARY KEY, ${quoteName('v"; --')} TEXT)`);
    const before = scratch('hostile-before.db');
    saveSnapshot(db, before);
    const session = db.createSession();
    db.prepare(`INSERT INTO ${quoteName(name)} VALUES (?, ?)`).run(1n, "'); DROP TABLE x; --");
    db.prepare(`INSERT INTO ${quoteName(name)} VALUES (?, ?)`).run(2n, 'two');
    const after = dumpDatabase(db);
    const sql = changesetToSql(session.changeset(), schemaOf(db));
    db.close();
    expect(sql).toContain('INSERT INTO "a""; DROP TABLE x; --" ("i\'d""", "v""; --") VALUES (1, \'\'\'); DROP TABLE x; --\');');
    const { node, cli } = runSql(before, sql);
    expect(node).toEqual(after);
    expect(node).toContain('table x');
    if (cli !== null) expect(cli).toEqual(after);
  });

  it('ok: the worked example as statements', () => {
    expect(changesetToSql(EXAMPLE_CHANGESET, EXAMPLE_SCHEMA)).toBe([
      'UPDATE "t" SET "name" = \'bobby\' WHERE "id" = 2;',
      'DELETE FROM "t" WHERE "id" = 3;',
      'INSERT INTO "t" ("id", "name", "score", "data", "note") VALUES (4, \'dave\', -0.50000000000000000, X\'\', 300);',
      '',
    ].join('\n'));
    expect(changesetToSql(EXAMPLE_PATCHSET, EXAMPLE_SCHEMA)).toBe(changesetToSql(EXAMPLE_CHANGESET, EXAMPLE_SCHEMA));
  });

  it('err: a table or column name with a newline or ESC is refused, never printed across lines (§2.6)', () => {
    for (const [table, column] of [['a\nb', 'v'], ['t', 'x\u001b[2Jy'], ['c\rd', 'v'], ['t', 'line\u2028sep']]) {
      const db = new DatabaseSync(':memory:');
      db.exec(`CREATE TABLE ${quoteName(table!)}(id INTEGER PRIMARY KEY, ${quoteName(column!)} TEXT)`);
      const session = db.createSession();
      db.prepare(`INSERT INTO ${quoteName(table!)} VALUES (1, 'v')`).run();
      const changeset = session.changeset();
      const schema = schemaOf(db);
      db.close();
      const bad = /[\u0000-\u001f\u2028]/.test(table!) ? table! : column!;
      expect(() => changesetToSql(changeset, schema)).toThrow(expect.objectContaining({ code: 'SQL_IDENTIFIER_UNSUPPORTED', details: { identifier: bad, table } }));
    }
  });

  it('err: a table missing from the schema', () => {
    expect(() => changesetToSql(EXAMPLE_CHANGESET, { other: { columns: ['a'] } })).toThrow(expect.objectContaining({
      code: 'CHANGESET_SCHEMA_UNKNOWN', details: { table: 't' },
    }));
  });
});

describe('formatSqlValue', () => {
  it.each([
    [null, 'NULL'], [-(2n ** 63n), '-9223372036854775808'], [0, '0.0'], [-0, '-0.0'], [Infinity, '9e999'], [-Infinity, '-9e999'],
    [1, '1.0000000000000000'], [1e21, '1.0000000000000000e+21'], [0.1, '0.10000000000000001'],
    ["o'k", "'o''k'"], ['a\nb', "CAST(X'610a62' AS TEXT)"], [new SqlText(Uint8Array.of(0xff)), "CAST(X'ff' AS TEXT)"],
    [Uint8Array.of(0, 0xab), "X'00ab'"], [new Uint8Array(0), "X''"],
  ])('ok: %s -> %s', (value, literal) => {
    expect(formatSqlValue(value)).toBe(literal);
  });

  it('ok: REALs below 1e-280 are an exact product of two literals', () => {
    expect(formatSqlValue(5e-324)).toMatch(/^\(.+ \* .+\)$/);
    const db = new DatabaseSync(':memory:');
    for (const real of [5e-324, -1e-310, 1.8565218326171285e-301, 5.971949096882513e-308, 2.2250738585072014e-308]) {
      const { v } = db.prepare(`SELECT ${formatSqlValue(real)} AS v`).get() as { v: number };
      expect(Object.is(v, real)).toBe(true);
    }
    db.close();
  });
});

describe('quoteIdentifier', () => {
  it('ok: doubles embedded quotes', () => {
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
  });
});

describe('changesetToRows', () => {
  it('ok: the worked example as named rows (changed columns only for updates)', () => {
    expect(changesetToRows(EXAMPLE_CHANGESET, { T: EXAMPLE_SCHEMA.t! })).toEqual([
      { table: 't', op: 'update', indirect: false, pk: { id: 2n }, before: { name: 'bob' }, after: { name: 'bobby' } },
      { table: 't', op: 'delete', indirect: false, pk: { id: 3n }, before: { id: 3n, name: 'carol', score: 3.25, data: Uint8Array.of(0xff), note: 'x' }, after: null },
      { table: 't', op: 'insert', indirect: false, pk: { id: 4n }, before: null, after: { id: 4n, name: 'dave', score: -0.5, data: new Uint8Array(0), note: 300n } },
    ]);
  });

  it('ok: patchsets have no before values for updates and deletes', () => {
    const rows = changesetToRows(EXAMPLE_PATCHSET, EXAMPLE_SCHEMA);
    expect(rows.map((row) => [row.op, row.pk, row.before, row.after])).toEqual([
      ['update', { id: 2n }, null, { name: 'bobby' }],
      ['delete', { id: 3n }, null, null],
      ['insert', { id: 4n }, null, { id: 4n, name: 'dave', score: -0.5, data: new Uint8Array(0), note: 300n }],
    ]);
  });

  it('ok: a schema with more columns (added later) is accepted; a column named __proto__ stays a column', () => {
    const rows = changesetToRows(EXAMPLE_CHANGESET, { t: { columns: ['id', '__proto__', 'score', 'data', 'note', 'added'] } });
    expect(Object.keys(rows[1]!.before!)).toEqual(['id', '__proto__', 'score', 'data', 'note']);
    expect(Object.getPrototypeOf(rows[1]!.before)).toBe(Object.prototype);
  });

  it('err: a table missing from the schema, or with fewer columns there', () => {
    const code = (schema: ChangesetSchema): unknown => {
      try {
        changesetToRows(EXAMPLE_CHANGESET, schema);
      } catch (error) {
        return ChangetrailError.is(error, 'CHANGESET_SCHEMA_UNKNOWN') ? error.details : error;
      }
      return 'no error';
    };
    expect(code({})).toEqual({ table: 't' });
    expect(code({ t: { columns: ['id', 'name'] } })).toEqual({ table: 't', changesetColumnCount: 5, schemaColumnCount: 2 });
    expect(() => changesetToRows(EXAMPLE_CHANGESET, { t: { columns: 'id' } } as never)).toThrow(TypeError);
  });
});

describe('valueToJson', () => {
  it('ok: JSON-friendly values', () => {
    expect([1n, 2n ** 63n - 1n, 1.5, Infinity, 'x', null].map((value) => valueToJson(value))).toEqual([1, '9223372036854775807', 1.5, 'Infinity', 'x', null]);
    expect(valueToJson(Uint8Array.of(1, 255))).toEqual({ $blob: '01ff' });
    expect(valueToJson(new SqlText(Uint8Array.of(0xc3)))).toEqual({ $textHex: 'c3' });
    const [row] = changesetToRows(EXAMPLE_CHANGESET, EXAMPLE_SCHEMA).slice(1);
    expect(JSON.parse(JSON.stringify(rowChangeToJson(row!)))).toEqual({
      table: 't', op: 'delete', indirect: false, key: { id: 3 }, before: { id: 3, name: 'carol', score: 3.25, data: { $blob: 'ff' }, note: 'x' }, after: null,
    });
  });
});
