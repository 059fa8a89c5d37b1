import { describe, expect, it } from 'vitest';
import { readChangesetTables } from '../../src/apply/changeset-tables.js';
import {
  createSchemaReader, findTable, nullKeyQuery, readSchema, toChangesetSchema, type DatabaseSchema, type TableSchema,
} from '../../src/apply/schema.js';
import { captureTransaction, openDb, tempPath } from './helpers.js';

const WEIRD = 'a"; DROP TABLE x; --';
const Q = `"${WEIRD.replaceAll('"', '""')}"`;

const SQL = `
CREATE TABLE plain(id INTEGER PRIMARY KEY, v);
CREATE TABLE nopk(a, b);
CREATE TABLE textkey(k TEXT PRIMARY KEY, v);
CREATE TABLE textkey_nn(k TEXT PRIMARY KEY NOT NULL, v);
CREATE TABLE desc_key(k INTEGER PRIMARY KEY DESC, v);
CREATE TABLE composite(v, k2, k1 NOT NULL, PRIMARY KEY(k1, k2));
CREATE TABLE wr(k, v, PRIMARY KEY(k)) WITHOUT ROWID;
CREATE TABLE gen(id INTEGER PRIMARY KEY, a, g1 AS (a * 2), b, g2 AS (a * 3) STORED);
CREATE TABLE ${Q}(${Q} INTEGER PRIMARY KEY, "x y");
CREATE TABLE _changetrail_head(id INTEGER PRIMARY KEY);
CREATE TABLE auto(id INTEGER PRIMARY KEY AUTOINCREMENT, v);
CREATE VIEW vw AS SELECT 1 AS one;
CREATE VIRTUAL TABLE ft USING fts5(body);
CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1);
CREATE VIRTUAL TABLE vocab USING fts5vocab(ft, 'row');
INSERT INTO auto(v) VALUES (1);
INSERT INTO plain VALUES (1, 1);
CREATE INDEX plain_v ON plain(v);
ANALYZE;
`;

function table(name: string, schema: DatabaseSchema): TableSchema {
  const found = findTable(schema, name);
  if (found === undefined) throw new Error(`no table ${name}`);
  return found;
}

function fixture() {
  const db = openDb(tempPath());
  db.exec(SQL);
  return db;
}

describe('readSchema', () => {
  const db = fixture();
  const schema = readSchema(db);

  it('ok: lists main tables in creation order, without sqlite_* (but sqlite_stat1) and _changetrail* tables', () => {
    expect(schema.tables.map((t) => t.name)).toEqual([
      'plain', 'nopk', 'textkey', 'textkey_nn', 'desc_key', 'composite', 'wr', 'gen', WEIRD, 'auto', 'ft', 'ft_data', 'ft_idx',
      'ft_content', 'ft_docsize', 'ft_config', 'rt', 'rt_rowid', 'rt_node', 'rt_parent', 'vocab', 'sqlite_stat1',
    ]);
    expect(schema.views).toEqual(['vw']);
    expect(schema.schemaVersion).toBeGreaterThan(0);
  });

  it('ok: columns exclude generated columns; pk holds PRIMARY KEY ordinals', () => {
    expect(table('gen', schema).columns).toEqual(['id', 'a', 'b']);
    expect(table('composite', schema).pk).toEqual([0, 2, 1]);
    expect(table(WEIRD, schema).columns).toEqual([WEIRD, 'x y']);
    expect(table('sqlite_stat1', schema).pk).toEqual([1, 2, 0]);
    expect(table('wr', schema).withoutRowid).toBe(true);
  });

  it('ok: capturable, with reasons for the rest', () => {
    const verdicts = Object.fromEntries(schema.tables.map((t) => [t.name, t.reason]));
    expect(verdicts).toMatchObject({ plain: null, nopk: 'no primary key', ft: null, rt: null, ft_data: null, sqlite_stat1: null, auto: null });
    expect(table('ft', schema).isVirtual).toBe(true);
    expect(table('ft_data', schema).isShadow).toBe(true);
    expect(table('rt_node', schema).isShadow).toBe(true);
  });

  it('ok: nullable key columns: rowid tables whose key is not the rowid and lacks NOT NULL', () => {
    const nullable = Object.fromEntries(schema.tables.map((t) => [t.name, t.nullablePkColumns]));
    expect(nullable).toMatchObject({
      plain: [], textkey: ['k'], textkey_nn: [], desc_key: ['k'], composite: ['k2'], wr: [], sqlite_stat1: [], ft_idx: [],
    });
    expect(nullKeyQuery(table('composite', schema))).toBe('SELECT 1 AS found FROM main."composite" WHERE "k2" IS NULL LIMIT 1');
    expect(nullKeyQuery(table('plain', schema))).toBeNull();
  });

  it('ok: pk equals the pk bytes SQLite writes in changeset headers', () => {
    const tables = ['plain', 'textkey', 'desc_key', 'composite', 'wr', 'gen', WEIRD];
    const changeset = captureTransaction(db, () => {
      for (const name of tables) {
        const t = table(name, schema);
        const q = `"${name.replaceAll('"', '""')}"`;
        db.prepare(`INSERT INTO ${q}(${t.columns.map((c) => `"${c.replaceAll('"', '""')}"`).join(', ')}) VALUES (${t.columns.map(() => '?').join(', ')})`)
          .run(...t.columns.map((_, index) => BigInt(100 + index)));
      }
    });
    for (const header of readChangesetTables(changeset)) {
      const t = table(header.name, schema);
      expect([...header.pk], header.name).toEqual(t.pk);
      expect(header.columnCount).toBe(t.columns.length);
    }
  });

  it('ok: a virtual table without shadow tables is not capturable', () => {
    expect(table('vocab', schema)).toMatchObject({ isVirtual: true, capturable: false, reason: 'virtual table' });
  });
});

describe('findTable', () => {
  it('ok: compares names ASCII-case-insensitively', () => {
    const schema = readSchema(fixture());
    expect(findTable(schema, 'PLAIN')?.name).toBe('plain');
    expect(findTable(schema, 'missing')).toBeUndefined();
  });
});

describe('toChangesetSchema', () => {
  it('ok: recorded columns per table, no virtual tables', () => {
    const rendered = toChangesetSchema(readSchema(fixture()));
    expect(rendered.gen).toEqual({ columns: ['id', 'a', 'b'] });
    expect(rendered.ft).toBeUndefined();
    expect(rendered.ft_data).toEqual({ columns: ['id', 'block'] });
  });
});

describe('createSchemaReader', () => {
  it('ok: same object until the schema version changes, also by another connection', () => {
    const path = tempPath();
    const db = openDb(path);
    db.exec('CREATE TABLE a(id INTEGER PRIMARY KEY)');
    const read = createSchemaReader(db);
    const first = read();
    expect(read()).toBe(first);
    const other = openDb(path);
    other.exec('CREATE TABLE b(x)');
    const second = read();
    expect(second).not.toBe(first);
    expect(findTable(second, 'b')?.reason).toBe('no primary key');
  });
});
