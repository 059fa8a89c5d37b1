import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { decodeChangeset, encodeChangeset, SqlText, type Changeset } from '../../src/changeset/index.js';
import { decodeUtf8 } from '../../src/changeset/utf8.js';
import { readVarint, varintSize, writeVarint } from '../../src/changeset/varint.js';
import { ChangetrailError } from '../../src/errors.js';
import { Rng, runSeed } from './workload.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Reference §1.6: the 109-byte changeset and 78-byte patchset of one session. */
const EXAMPLE_CHANGESET = hex(`
  54050100000000740017000100000000000000020303626f62000000000305626f626279000000090001000000000000
  000303056361726f6c02400a0000000000000401ff030178120001000000000000000403046461766502bfe00000000000
  00040001000000000000012c`);
const EXAMPLE_PATCHSET = hex(`
  50 05 0100000000 7400
  17 00 010000000000000002 0305626f626279 00 00 00
  09 00 010000000000000003
  12 00 010000000000000004 030464617665 02bfe0000000000000 0400 01000000000000012c`);

function captureExample(): { changeset: Uint8Array; patchset: Uint8Array } {
  const db = new DatabaseSync(':memory:');
  db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, note);
    INSERT INTO t VALUES (1,'alice',1.5,x'0102',NULL),(2,'bob',2.0,NULL,'keep'),(3,'carol',3.25,x'ff','x');`);
  const session = db.createSession();
  db.exec(`INSERT INTO t VALUES (4,'dave',-0.5,x'',300); UPDATE t SET name='bobby' WHERE id=2; DELETE FROM t WHERE id=3;`);
  const captured = { changeset: session.changeset(), patchset: session.patchset() };
  db.close();
  return captured;
}

function malformedDetails(bytes: Uint8Array): { offset: number; reason: string } {
  try {
    decodeChangeset(bytes);
  } catch (error) {
    if (ChangetrailError.is(error, 'CHANGESET_MALFORMED')) return error.details;
    throw error;
  }
  throw new Error(`decoded without error: ${toHex(bytes)}`);
}

describe('decodeChangeset', () => {
  it('ok: the worked changeset of reference §1.6, field by field', () => {
    expect(EXAMPLE_CHANGESET.length).toBe(109);
    expect(decodeChangeset(EXAMPLE_CHANGESET)).toEqual({
      tables: [{
        kind: 'changeset', name: 't', columnCount: 5, pk: Uint8Array.of(1, 0, 0, 0, 0),
        changes: [
          { op: 'update', indirect: false, old: [2n, 'bob', undefined, undefined, undefined], new: [undefined, 'bobby', undefined, undefined, undefined] },
          { op: 'delete', indirect: false, old: [3n, 'carol', 3.25, Uint8Array.of(0xff), 'x'] },
          { op: 'insert', indirect: false, new: [4n, 'dave', -0.5, new Uint8Array(0), 300n] },
        ],
      }],
    } satisfies Changeset);
  });

  it('ok: the worked patchset: PK-only DELETE and single-record UPDATE spread over all columns', () => {
    expect(EXAMPLE_PATCHSET.length).toBe(78);
    const [table] = decodeChangeset(EXAMPLE_PATCHSET).tables;
    expect(table!.kind).toBe('patchset');
    expect(table!.changes).toEqual([
      { op: 'update', indirect: false, old: [2n, undefined, undefined, undefined, undefined], new: [undefined, 'bobby', undefined, undefined, undefined] },
      { op: 'delete', indirect: false, old: [3n, undefined, undefined, undefined, undefined] },
      { op: 'insert', indirect: false, new: [4n, 'dave', -0.5, new Uint8Array(0), 300n] },
    ]);
  });

  it('ok: node:sqlite produces exactly the worked example bytes', () => {
    const { changeset, patchset } = captureExample();
    expect(toHex(changeset)).toBe(toHex(EXAMPLE_CHANGESET));
    expect(toHex(patchset)).toBe(toHex(EXAMPLE_PATCHSET));
  });

  it('ok: pk bytes are PK ordinals, kept raw ([0,2,1] for PRIMARY KEY(k1,k2))', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t(v, k2, k1, PRIMARY KEY(k1, k2)); CREATE TABLE u(v, k2, k1, PRIMARY KEY(k2, k1)) WITHOUT ROWID');
    const session = db.createSession();
    db.exec("INSERT INTO t VALUES ('x', 1, 2); INSERT INTO u VALUES ('y', 3, 4); DELETE FROM u");
    db.exec("INSERT INTO u VALUES ('y', 'ns', 2)");
    const changeset = session.changeset();
    const patchset = session.patchset();
    db.close();
    const tables = decodeChangeset(changeset).tables;
    expect(tables.map((table) => [table.name, [...table.pk]])).toEqual([['t', [0, 2, 1]], ['u', [0, 1, 2]]]);
    expect(toHex(encodeChangeset(decodeChangeset(changeset)))).toBe(toHex(changeset));
    expect(toHex(encodeChangeset(decodeChangeset(patchset)))).toBe(toHex(patchset));
  });

  it('ok: -0, ±Infinity, int64 extremes, NULL vs undefined, empty text and blob, invalid UTF-8 as SqlText', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c, d, e, f, g)');
    const session = db.createSession();
    db.prepare("INSERT INTO t VALUES (1, ?, ?, ?, ?, '', x'', CAST(x'ff61' AS TEXT))").run(-0, Infinity, -(2n ** 63n), null);
    db.prepare('INSERT INTO t VALUES (2, ?, 9223372036854775807, NULL, NULL, NULL, NULL, NULL)').run(-Infinity);
    const changeset = session.changeset();
    db.close();
    const changes = decodeChangeset(changeset).tables[0]!.changes;
    const row1 = changes.find((change) => change.new![0] === 1n)!.new!;
    expect(Object.is(row1[1], -0)).toBe(true);
    expect(row1.slice(2, 7)).toEqual([Infinity, -(2n ** 63n), null, '', new Uint8Array(0)]);
    expect(row1[7]).toBeInstanceOf(SqlText);
    expect([...(row1[7] as SqlText).bytes]).toEqual([0xff, 0x61]);
    expect(changes.find((change) => change.new![0] === 2n)!.new!.slice(1, 3)).toEqual([-Infinity, 2n ** 63n - 1n]);
    expect(toHex(encodeChangeset(decodeChangeset(changeset)))).toBe(toHex(changeset));
  });

  it('ok: a leading UTF-8 BOM in text is kept', () => {
    const bytes = hex('54 02 0100 7400 12 00 01 0000000000000001 03 03 efbbbf');
    const field = decodeChangeset(bytes).tables[0]!.changes[0]!.new![1];
    expect(field).toBe('\uFEFF');
    expect(toHex(encodeChangeset(decodeChangeset(bytes)))).toBe(toHex(bytes));
  });

  it('ok: empty input, repeated groups for one table and empty groups are kept', () => {
    expect(decodeChangeset(new Uint8Array(0))).toEqual({ tables: [] });
    const bytes = hex('54 01 01 7400   54 01 01 5400 12 01 01 0000000000000001   50 01 01 7400 09 00 01 0000000000000002');
    const { tables } = decodeChangeset(bytes);
    expect(tables.map((table) => [table.kind, table.name, table.changes.length])).toEqual([['changeset', 't', 0], ['changeset', 'T', 1], ['patchset', 't', 1]]);
    expect(tables[1]!.changes[0]).toEqual({ op: 'insert', indirect: true, new: [1n] });
    expect(toHex(encodeChangeset(decodeChangeset(bytes)))).toBe(toHex(bytes));
  });

  it('ok: a 20000-byte text takes a 3-byte length varint; 201 columns a 2-byte column count', () => {
    const db = new DatabaseSync(':memory:');
    db.exec(`CREATE TABLE w(id INTEGER PRIMARY KEY, ${Array.from({ length: 200 }, (_, index) => `c${index}`).join(', ')})`);
    const session = db.createSession();
    db.prepare('INSERT INTO w(id, c0, c199) VALUES (1, ?, 7)').run('L'.repeat(20000));
    const changeset = session.changeset();
    db.close();
    expect(toHex(changeset.subarray(0, 3))).toBe('548149');
    expect(toHex(changeset).includes('03819c20')).toBe(true);
    const table = decodeChangeset(changeset).tables[0]!;
    expect(table.columnCount).toBe(201);
    expect(table.changes[0]!.new![1]).toBe('L'.repeat(20000));
    expect(toHex(encodeChangeset(decodeChangeset(changeset)))).toBe(toHex(changeset));
  });

  it.each([
    ['truncated header', '54', 1, 'truncated varint'],
    ['wrong marker', '55 01 01 7400', 0, 'expected a table header marker'],
    ['column count 0', '54 00 7400', 1, 'column count 0 outside 1..65536'],
    ['column count 65537', '54 848001 00', 1, 'column count 65537 outside 1..65536'],
    ['non-canonical varint', '54 8001 01 7400', 1, 'non-canonical varint'],
    ['varint over 5 bytes', '54 ffffffffff01', 1, 'varint longer than 5 bytes'],
    ['truncated pk flags', '54 05 0100', 2, 'truncated primary key flags'],
    ['name without NUL', '54 01 01 7474', 3, 'table name without NUL terminator'],
    ['name not UTF-8', '54 01 01 ff00', 3, 'table name is not valid UTF-8'],
    ['change before header', '12 00 05', 0, 'change before any table header'],
    ['unknown op', '54 01 01 7400 13 00 0101', 5, 'expected an op byte or a table header'],
    ['one dangling byte', '54 01 01 7400 12 00 01 0000000000000001 12', 16, 'truncated change'],
    ['indirect byte 2', '54 01 01 7400 12 02 0101', 6, 'indirect byte is not 0 or 1'],
    ['truncated INTEGER', '54 01 01 7400 12 00 01 0102', 7, 'truncated value'],
    ['text length past the end', '54 01 01 7400 12 00 03 05 6161', 7, 'value length past the end'],
    ['truncated length varint', '54 01 01 7400 12 00 03 81', 8, 'truncated varint'],
    ['unknown type byte', '54 01 01 7400 12 00 06', 7, 'unknown value type 0x6'],
    ['truncated record', '54 02 0100 7400 12 00 05', 9, 'truncated record'],
    ['undefined in INSERT', '54 01 01 7400 12 00 00', 7, 'undefined value in an INSERT or DELETE record'],
    ['undefined in DELETE', '54 02 0100 7400 09 00 05 00', 9, 'undefined value in an INSERT or DELETE record'],
    ['undefined PK in changeset UPDATE', '54 01 01 7400 17 00 00 05', 7, 'undefined primary key value'],
    ['undefined PK in patchset UPDATE', '50 02 0100 7400 17 00 00 0500', 8, 'undefined primary key value'],
    ['trailing garbage', '54 01 01 7400 12 00 05 ff', 8, 'expected an op byte or a table header'],
    ['REAL NaN', '54 01 01 7400 12 00 02 7ff8000000000000', 7, 'REAL value is NaN'],
  ])('err: %s', (_name, input, offset, reason) => {
    expect(malformedDetails(hex(input))).toEqual({ offset, reason });
  });

  it('err: not a Uint8Array is a TypeError', () => {
    expect(() => decodeChangeset('54' as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('encodeChangeset', () => {
  const table = { kind: 'changeset' as const, name: 't', columnCount: 2, pk: Uint8Array.of(1, 0) };

  it('ok: writes the worked example from its decoded form', () => {
    expect(toHex(encodeChangeset(decodeChangeset(EXAMPLE_CHANGESET)))).toBe(toHex(EXAMPLE_CHANGESET));
    expect(toHex(encodeChangeset(decodeChangeset(EXAMPLE_PATCHSET)))).toBe(toHex(EXAMPLE_PATCHSET));
  });

  it('ok: encodes strings as UTF-8 and SqlText as its bytes', () => {
    const bytes = encodeChangeset({ tables: [{ ...table, changes: [{ op: 'insert', indirect: false, new: [1n, 'é'] }, { op: 'insert', indirect: true, new: [2n, new SqlText(Uint8Array.of(0xff))] }] }] });
    expect(toHex(bytes)).toBe('5402010074001200010000000000000001' + '0302c3a9' + '1201010000000000000002' + '0301ff');
  });

  it.each([
    ['undefined in an INSERT', { op: 'insert', indirect: false, new: [1n, undefined] }, TypeError],
    ['a wrong-length record', { op: 'insert', indirect: false, new: [1n] }, TypeError],
    ['old on an INSERT', { op: 'insert', indirect: false, new: [1n, 2n], old: [1n, 2n] }, TypeError],
    ['undefined PK in an UPDATE', { op: 'update', indirect: false, old: [undefined, 1n], new: [undefined, 2n] }, TypeError],
    ['an int64 overflow', { op: 'insert', indirect: false, new: [2n ** 63n, 1n] }, RangeError],
    ['a NaN REAL', { op: 'insert', indirect: false, new: [1n, NaN] }, RangeError],
    ['a non-value', { op: 'insert', indirect: false, new: [1n, {}] }, TypeError],
    ['an unknown op', { op: 'upsert', indirect: false, new: [1n, 1n] }, TypeError],
  ])('err: %s', (_name, change, type) => {
    expect(() => encodeChangeset({ tables: [{ ...table, changes: [change as never] }] })).toThrow(type);
  });

  it('err: patchset records cannot carry values the format omits', () => {
    const patch = { ...table, kind: 'patchset' as const };
    expect(() => encodeChangeset({ tables: [{ ...patch, changes: [{ op: 'delete', indirect: false, old: [1n, 'x'] }] }] })).toThrow(TypeError);
    expect(() => encodeChangeset({ tables: [{ ...patch, changes: [{ op: 'update', indirect: false, old: [1n, undefined], new: [1n, 'x'] }] }] })).toThrow(TypeError);
  });

  it('err: bad headers are API misuse', () => {
    expect(() => encodeChangeset({ tables: [{ ...table, columnCount: 0, pk: new Uint8Array(0), changes: [] }] })).toThrow(RangeError);
    expect(() => encodeChangeset({ tables: [{ ...table, name: 'a\0b', changes: [] }] })).toThrow(RangeError);
    expect(() => encodeChangeset({ tables: [{ ...table, pk: Uint8Array.of(1), changes: [] }] })).toThrow(TypeError);
  });
});

describe('varint', () => {
  it.each([[0, '00'], [127, '7f'], [128, '8100'], [201, '8149'], [16383, 'ff7f'], [16384, '818000'], [20000, '819c20'], [65536, '848000'], [2 ** 31 - 1, '87ffffff7f']])('ok: %i <-> %s', (value, encoded) => {
    const target = new Uint8Array(5);
    const end = writeVarint(target, 0, value);
    expect(toHex(target.subarray(0, end))).toBe(encoded);
    expect(varintSize(value)).toBe(end);
    expect(readVarint(hex(encoded), 0, end)).toBe(value);
  });

  it('err: 2^31 and above is malformed', () => {
    expect(() => readVarint(hex('8880808000'), 0, 5)).toThrow(ChangetrailError);
  });
});

describe('decodeUtf8', () => {
  const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const reference = (bytes: Uint8Array): string | null => {
    try {
      return fatal.decode(bytes);
    } catch {
      return null;
    }
  };

  it('ok: agrees with a fatal TextDecoder on random and near-UTF-8 bytes', () => {
    const rng = new Rng(runSeed());
    const interesting = [0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90];
    for (let round = 0; round < 20000; round++) {
      const size = rng.range(0, round % 100 === 0 ? 400 : 8);
      const bytes = Uint8Array.from({ length: size }, () => (rng.chance(0.5) ? rng.pick(interesting) : rng.int(256)));
      const at = rng.int(3);
      const padded = Uint8Array.from([0x41, 0x42, 0x43].slice(0, at).concat([...bytes], [0x44]));
      expect(decodeUtf8(padded, at, at + size)).toBe(reference(bytes));
    }
  });

  it('ok: round-trips every kind of code point', () => {
    const text = 'aé€😀\u{10FFFF}\u0000\uFEFF\u07FF\u0800\uFFFF\u{10000}';
    const bytes = new TextEncoder().encode(text);
    expect(decodeUtf8(bytes, 0, bytes.length)).toBe(text);
    const long = text.repeat(100);
    const longBytes = new TextEncoder().encode(long);
    expect(decodeUtf8(longBytes, 0, longBytes.length)).toBe(long);
  });
});
