/**
 * Differential tests against SQLite's own C implementation (sqlite-wasm 3.54.1): changesets and
 * patchsets captured from real node:sqlite sessions over random schemas must invert and combine to the
 * same bytes as sqlite3changeset_invert and sqlite3changegroup, and decode → encode must be the identity.
 */
import { DatabaseSync } from 'node:sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Change, combineChangesets, decodeChangeset, encodeChangeset, invertChangeset, iterateChangeset, summarizeChangeset,
} from '../../src/changeset/index.js';
import { ChangetrailError } from '../../src/errors.js';
import { craftGroups, craftTables } from './crafted.js';
import { loadOracle, SQLITE_CORRUPT, SQLITE_ERROR, SQLITE_OK, SQLITE_SCHEMA, type Oracle } from './oracle.js';
import { createTables, randomSchema, randomWrites, Rng, runSeed, withSeed, Writer, type ValueOptions } from './workload.js';

let oracle: Oracle;
beforeAll(async () => {
  oracle = await loadOracle();
});

const seed = runSeed();
/** Random database runs per test; each yields 2-5 sessions and about ten oracle comparisons. */
const RUNS = 400;

interface Captured {
  changesets: Uint8Array[];
  patchsets: Uint8Array[];
}

/** Consecutive sessions over one random database: each session's changeset and patchset. */
function captureRun(rng: Rng, sessionCount: number, options: ValueOptions & { wide: boolean }): Captured {
  const db = new DatabaseSync(':memory:');
  try {
    const writer = new Writer(db);
    const tables = randomSchema(rng, { wide: options.wide });
    createTables(rng, db, writer, tables, options);
    const captured: Captured = { changesets: [], patchsets: [] };
    for (let index = 0; index < sessionCount; index++) {
      const session = db.createSession();
      randomWrites(rng, writer, tables, rng.range(1, 40), options);
      captured.changesets.push(session.changeset());
      captured.patchsets.push(session.patchset());
      session.close();
    }
    return captured;
  } finally {
    db.close();
  }
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
    expect.fail(`${what}: ${Buffer.from(actual).toString('hex')} != oracle ${Buffer.from(expected).toString('hex')}`);
  }
}

/** The same bytes inside a larger buffer, at a non-zero byteOffset and with garbage after them. */
function embedded(bytes: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 11).fill(0xee);
  buffer.set(bytes, 5);
  return buffer.subarray(5, 5 + bytes.length);
}

/** What iterateChangeset yields, flattened as [table, pk flags, change]: must equal decodeChangeset's. */
function lazily(bytes: Uint8Array): unknown[] {
  return [...iterateChangeset(bytes)].map(({ group, change }) => [group.name, group.pk, change]);
}

function checkOne(bytes: Uint8Array, patchset: boolean): void {
  expectSameBytes(encodeChangeset(decodeChangeset(bytes)), bytes, 'decode/encode');
  const shifted = embedded(bytes);
  expect(decodeChangeset(shifted)).toEqual(decodeChangeset(bytes));
  expectSameBytes(combineChangesets([shifted, shifted]), combineChangesets([bytes, bytes]), 'combine of a subarray');
  if (!patchset) expectSameBytes(invertChangeset(shifted), invertChangeset(bytes), 'invert of a subarray');
  const counts = summarizeChangeset(bytes).reduce((sum, table) => sum + table.inserts + table.updates + table.deletes, 0);
  expect(counts).toBe(decodeChangeset(bytes).tables.reduce((sum, table) => sum + table.changes.length, 0));
  expect(lazily(shifted)).toEqual(decodeChangeset(bytes).tables.flatMap((table) => table.changes.map((change) => [table.name, table.pk, change])));
  const inverted = oracle.invert(bytes);
  if (patchset && bytes.length > 0) {
    expect(inverted.rc).toBe(SQLITE_CORRUPT);
    expect(() => invertChangeset(bytes)).toThrow(ChangetrailError);
    return;
  }
  expect(inverted.rc).toBe(SQLITE_OK);
  expectSameBytes(invertChangeset(bytes), inverted.bytes, 'invert');
  // Equal to the input for everything SQLite writes; crafted UPDATEs with new.* PK values lose them.
  expectSameBytes(invertChangeset(invertChangeset(bytes)), oracle.invert(inverted.bytes).bytes, 'invert twice');
}

function checkCombine(list: Uint8Array[]): void {
  const grouped = oracle.group(list);
  expect(grouped.rc).toBe(SQLITE_OK);
  expectSameBytes(combineChangesets(list), grouped.bytes, 'combine');
}

/** Two databases with the same schema and start rows, written independently: unrelated changesets. */
function captureIndependent(rng: Rng, options: ValueOptions): Captured {
  const tablesSeed = rng.uint32();
  const captured: Captured = { changesets: [], patchsets: [] };
  for (let index = 0; index < 2; index++) {
    const db = new DatabaseSync(':memory:');
    const writer = new Writer(db);
    const setup = new Rng(tablesSeed);
    const tables = randomSchema(setup);
    createTables(setup, db, writer, tables, options);
    const session = db.createSession();
    randomWrites(rng, writer, tables, rng.range(5, 60), options);
    captured.changesets.push(session.changeset());
    captured.patchsets.push(session.patchset());
    session.close();
    db.close();
  }
  return captured;
}

describe('differential: node:sqlite sessions vs sqlite-wasm', () => {
  it('ok: decode/encode, invert and combine of consecutive sessions are byte-identical to SQLite', () => {
    const rng = new Rng(seed);
    let cases = 0;
    withSeed(seed, () => {
      for (let run = 0; run < RUNS; run++) {
        const options = { signedZero: true, longText: 0.02, wide: run % 10 === 0 };
        const { changesets, patchsets } = captureRun(rng, rng.range(2, 5), options);
        for (const bytes of changesets) {
          checkOne(bytes, false);
          expectSameBytes(invertChangeset(invertChangeset(bytes)), bytes, 'invert twice');
        }
        for (const bytes of patchsets) checkOne(bytes, true);
        checkCombine(changesets);
        checkCombine(patchsets);
        checkCombine(changesets.slice(0, 1));
        checkCombine([...changesets].reverse());
        cases += 2 * changesets.length + 4;
      }
    });
    expect(cases).toBeGreaterThan(RUNS * 8);
  });

  it('ok: combining unrelated changesets (every op pair, including the ones SQLite ignores) matches SQLite', () => {
    const rng = new Rng(seed + 1);
    withSeed(seed, () => {
      for (let run = 0; run < RUNS / 2; run++) {
        const { changesets, patchsets } = captureIndependent(rng, { signedZero: true, longText: 0 });
        checkCombine(changesets);
        checkCombine([...changesets].reverse());
        checkCombine(patchsets);
        checkCombine([changesets[0]!, changesets[1]!, changesets[0]!]);
        // A raw byte concatenation is one input with repeated groups per table.
        checkCombine([Buffer.concat(changesets)]);
        checkCombine([Buffer.concat(patchsets), patchsets[0]!]);
      }
    });
  });

  it('ok: hash table growth past 256, 512, ... buckets reproduces the row order of SQLite', () => {
    withSeed(seed, () => {
      const db = new DatabaseSync(':memory:');
      db.exec('CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID');
      const sessions = [db.createSession()];
      db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
        INSERT INTO big SELECT i, 'v' || i FROM n; INSERT INTO kv SELECT 'k' || id, id FROM big WHERE id % 3 = 0`);
      const first = [sessions[0]!.changeset(), sessions[0]!.patchset()];
      sessions.push(db.createSession());
      db.exec("UPDATE big SET v = 'w' WHERE id % 2 = 0; DELETE FROM big WHERE id % 5 = 0; DELETE FROM kv WHERE v % 7 = 0; UPDATE kv SET v = -v WHERE v % 2 = 0");
      const second = [sessions[1]!.changeset(), sessions[1]!.patchset()];
      for (const kind of [0, 1]) {
        const list = [first[kind]!, second[kind]!];
        checkCombine(list);
        checkCombine([...list].reverse());
        if (kind === 0) checkOne(list[1]!, false);
      }
      db.close();
    });
  });

  it('ok: crafted inputs (NULL PKs, new.* PK values, many changes per row, PK-less tables) invert and combine as in SQLite', () => {
    const rng = new Rng(seed + 2);
    withSeed(seed, () => {
      for (let run = 0; run < RUNS; run++) {
        const kind = rng.chance(0.5) ? 'changeset' as const : 'patchset' as const;
        const tables = craftTables(rng, true);
        const list = Array.from({ length: rng.range(1, 4) }, () => encodeChangeset({ tables: craftGroups(rng, tables, kind) }));
        for (const bytes of list) checkOne(bytes, kind === 'patchset');
        checkCombine(list);
      }
    });
  });

  it('ok: an UPDATE whose new.* holds a PK value moves the merged row as in SQLite (hash recomputed on growth)', () => {
    const group = (changes: Change[]): Uint8Array => encodeChangeset({
      tables: [{ kind: 'changeset', name: 't', columnCount: 2, pk: Uint8Array.of(1, 0), changes }],
    });
    const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, index) => BigInt(from + index));
    const inserts = group(range(1, 200).map((id) => ({ op: 'insert', indirect: false, new: [id, 'v'] })));
    const moves = group(range(1, 50).map((id) => ({ op: 'update', indirect: false, old: [id, 'v'], new: [id + 1000n, 'w'] })));
    const more = group(range(300, 100).map((id) => ({ op: 'insert', indirect: false, new: [id, 'x'] })));
    const hits = group(range(1001, 50).map((id) => ({ op: 'delete', indirect: false, old: [id, 'w'] })));
    checkCombine([inserts, moves, more]);
    checkCombine([inserts, moves, more, hits]);
  });

  it('ok: empty inputs, header-only groups and case-different names combine as in SQLite', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, a); CREATE TABLE "T2"(id INTEGER PRIMARY KEY, a)');
    const session = db.createSession();
    db.exec("INSERT INTO t VALUES (1, 'x'), (2, 'y'); INSERT INTO T2 VALUES (5, 'z')");
    const changeset = session.changeset();
    const upper = Buffer.from(Buffer.from(changeset).toString('latin1').replace('t\0', 'T\0'), 'latin1');
    const headerOnly = Uint8Array.of(0x54, 0x02, 0x01, 0x00, 0x78, 0x00);
    for (const list of [[], [new Uint8Array(0)], [headerOnly], [headerOnly, changeset], [upper, changeset], [changeset, upper, headerOnly]]) {
      checkCombine(list);
    }
    expect(summarizeChangeset(combineChangesets([upper, changeset])).map((table) => table.table)).toEqual(['T', 'T2']);
    // Only ASCII letters fold: 'Ü' and 'ü' are two tables (here with different column counts).
    const accented = ['Ü', 'ü'].map((name, index) => encodeChangeset({ tables: [{
      kind: 'changeset', name, columnCount: index + 1, pk: Uint8Array.of(1, 0).subarray(0, index + 1), changes: [{ op: 'insert', indirect: false, new: [1n, 2n].slice(0, index + 1) }],
    }] }));
    checkCombine(accented);
    expect(summarizeChangeset(combineChangesets(accented)).map((table) => table.table)).toEqual(['Ü', 'ü']);
    db.close();
  });

  it('err: mixing changesets and patchsets is CHANGESET_KIND_MISMATCH where SQLite says SQLITE_ERROR', () => {
    const insert = (kind: 'changeset' | 'patchset', name = 't', pk = Uint8Array.of(1, 0)): Uint8Array => encodeChangeset({
      tables: [{ kind, name, columnCount: pk.length, pk, changes: [{ op: 'insert', indirect: false, new: [...pk].map((_, index) => BigInt(index)) }] }],
    });
    const cases: [Uint8Array[], unknown][] = [
      [[insert('changeset'), insert('patchset')], { code: 'CHANGESET_KIND_MISMATCH', details: { index: 1 } }],
      [[Buffer.concat([insert('patchset'), insert('changeset', 'u')])], { code: 'CHANGESET_KIND_MISMATCH', details: { index: 0 } }],
      [[insert('changeset'), insert('changeset', 'T', Uint8Array.of(1, 0, 0))], { code: 'CHANGESET_SCHEMA_MISMATCH', details: { table: 'T', index: 1 } }],
      [[insert('changeset', 'kv', Uint8Array.of(0, 1, 2)), insert('changeset', 'kv', Uint8Array.of(0, 2, 1))], { code: 'CHANGESET_SCHEMA_MISMATCH', details: { table: 'kv', index: 1 } }],
    ];
    const rcs = [SQLITE_ERROR, SQLITE_ERROR, SQLITE_SCHEMA, SQLITE_SCHEMA];
    cases.forEach(([list, error], index) => {
      expect(oracle.group(list).rc).toBe(rcs[index]);
      expect(() => combineChangesets(list)).toThrow(expect.objectContaining(error as object));
    });
    // A patchset with only empty groups fixes nothing: SQLite decides the kind at the first change.
    const emptyPatchGroup = Uint8Array.of(0x50, 0x01, 0x01, 0x74, 0x00);
    checkCombine([emptyPatchGroup, insert('changeset')]);
  });
});
