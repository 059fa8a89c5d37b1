/**
 * The one entry validation has a hand-written fast path (entry.ts `acceptCanonical`) in front of the zod
 * schema. It must accept exactly what the schema accepts, with the same result, on the writer's side
 * (plain objects) and the readers' (msgpack bytes): a seeded fuzz of valid bodies and bodies with fields
 * replaced, removed or added, laid out by other msgpack encoders and with bytes changed, compared against
 * the schema alone. A reader's first pass checks plain write bodies in place (`checkCanonicalWrite`): it
 * must accept only bodies `decodeEntryBody` accepts, and find their fields where they are. The frame CRC
 * is summed in place for short ranges: it must equal zlib's; the first pass's digest (taken as a string)
 * must equal hashEntryBody's.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/index.js';
import { crc32 } from 'node:zlib';
import { checksumAt } from '../../src/journal/bytes.js';
import { checkBodyBySchema, checkCanonicalWrite, checkEntryBody, checkpointFileName, decodeEntryBody, decodeEntryBodyBySchema, hashEntryBody, hashEntryBodyInto, snapshotFileName } from '../../src/journal/entry.js';
import { encodeRowids } from '../../src/journal/rowids.js';
import { mulberry32 } from '../helpers/random.js';

/** The writer's encoder, then others laying the same values out differently (map16 headers, float32). */
const packers = [
  new Packr({ useRecords: false, variableMapSize: true, moreTypes: false, int64AsType: 'number' }),
  new Packr({ useRecords: false, variableMapSize: false, moreTypes: false, int64AsType: 'number' }),
  new Packr({ useRecords: false, variableMapSize: true, useFloat32: 1, int64AsType: 'number' }),
];
const SEED = Number(process.env.CT_ENTRY_FUZZ_SEED ?? 20261201);
const CASES = Number(process.env.CT_ENTRY_FUZZ_CASES ?? 3000);

const generator = mulberry32;

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Values that sit on an edge of some rule of the schema. */
function oddValue(random: Random): unknown {
  return pick(random, [
    () => null, () => undefined, () => true, () => 0, () => -0, () => 1, () => 2, () => 3, () => -1, () => 1.5, () => 2 ** 53, () => 2 ** 53 - 1,
    () => NaN, () => Infinity, () => 253_402_300_799_999, () => 253_402_300_800_000, () => '', () => 'write', () => 'schema', () => 'resync',
    () => 'a\uD800', () => '\u{1F600}', () => 'x'.repeat(90_000), () => '\u00e9'.repeat(140_000), () => new Uint8Array(32), () => new Uint8Array(31),
    () => new Uint8Array(0), () => [], () => [1], () => ({}), () => ({ a: 1 }), () => new Map<unknown, unknown>([[1, 2]]), () => new Date(0),
    () => [{ table: 't', inserts: 1, updates: 0, deletes: 0 }], () => ({ __proto__: null, x: 1 }), () => JSON.parse('{"__proto__": 1}'),
  ])();
}

function validBody(random: Random): Record<string, unknown> {
  const seq = 1 + Math.floor(random() * 1000);
  const kind = pick(random, ['write', 'write', 'schema', 'resync'] as const);
  const rowids = kind !== 'resync' && random() < 0.2;
  const body: Record<string, unknown> = {
    v: rowids ? 2 : 1, seq, kind, time: Math.floor(random() * 2e12), epoch: Math.floor(random() * 5),
    actor: random() < 0.5 ? null : pick(random, ['alice', '\u{1F600}', '']), message: random() < 0.5 ? null : 'msg',
    meta: random() < 0.6 ? null : pick(random, [{ a: 1 }, { nested: { list: [1, 'x', null, true, { y: 2.5 }] } }, {}, JSON.parse('{"__proto__": {"k": 1}}')]),
    prevHash: new Uint8Array(32).fill(seq & 0xff),
    tables: Array.from({ length: Math.floor(random() * 3) }, (_, i) => ({ table: `t${i}`, inserts: i, updates: 1, deletes: 0 })),
    changeset: new Uint8Array(Math.floor(random() * 40)).fill(7),
  };
  if (kind === 'schema') body.sql = 'CREATE TABLE x(a)';
  if (kind === 'resync') body.snapshot = { file: snapshotFileName(seq), sha256: new Uint8Array(32), size: 4096 };
  if (kind === 'write' && seq > 1 && random() < 0.2) body.undoes = seq - 1;
  if (kind === 'resync' && random() < 0.3) {
    // A checkpoint (retention): version 3, its own snapshot name, `at` an earlier entry, no changes.
    Object.assign(body, { v: 3, kind: 'checkpoint', tables: [], changeset: new Uint8Array(0), at: { seq: seq - 1, hash: new Uint8Array(32) } });
    body.snapshot = { file: checkpointFileName(seq), sha256: new Uint8Array(32), size: 4096 };
  }
  if (rowids) body.rowids = encodeRowids([{ table: 't0', keyOrdinals: [1], rows: [{ key: ['k'], before: 1n, after: 5n }] }]);
  return body;
}

/** Each numeric field's bounds, for edits just inside and just outside them. */
const BOUNDS: Record<string, [number, number]> = {
  seq: [1, 2 ** 53 - 1], time: [0, 253_402_300_799_999], epoch: [0, 2 ** 53 - 1], undoes: [1, 2 ** 53 - 1], v: [1, 2],
};

function boundaryValue(random: Random, [min, max]: [number, number]): number {
  return pick(random, [min - 1, min, max, max + 1, min + 0.5, -0, 2 ** 32, 2 ** 32 - 1, 127, 128]);
}

/** A valid body, then up to three edits: a field replaced by an odd value, removed, or an unknown one added. */
function candidate(random: Random): Record<string, unknown> {
  const body = validBody(random);
  if (random() < 0.3) {
    const key = pick(random, Object.keys(BOUNDS));
    body[key] = boundaryValue(random, BOUNDS[key]!);
    if (isObject((body.tables as unknown[])[0]) && random() < 0.3) (body.tables as Record<string, unknown>[])[0]!.inserts = boundaryValue(random, [0, 2 ** 53 - 1]);
    return body;
  }
  const edits = Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const keys = [...Object.keys(body), 'sql', 'snapshot', 'undoes', 'rowids', 'extra'];
    const key = pick(random, keys);
    const what = random();
    if (what < 0.15) delete body[key];
    else if (what < 0.3 && isObject((body.tables as unknown[] | undefined)?.[0])) (body.tables as Record<string, unknown>[])[0]![pick(random, ['table', 'inserts', 'extra'])] = oddValue(random);
    else if (what < 0.4 && isObject(body.snapshot)) (body.snapshot as Record<string, unknown>)[pick(random, ['file', 'sha256', 'size', 'x'])] = oddValue(random);
    else body[key] = oddValue(random);
  }
  return body;
}

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

function outcome(fn: () => unknown): unknown {
  try {
    const value = fn();
    return { ok: value, keys: Object.keys(value as object) };
  } catch (error) {
    if (error instanceof ChangetrailError) return { code: error.code, details: error.details };
    return { thrown: String(error) };
  }
}

describe('checkEntryBody (the writer side)', () => {
  it(`ok: accepts exactly what the schema accepts (${CASES} seeded cases, seed ${SEED})`, () => {
    const random = generator(SEED);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const body = candidate(random);
      const fast = checkEntryBody(body);
      const schema = checkBodyBySchema(body);
      expect(fast.issues === null, `case ${i}`).toBe(schema.issues === null);
      if (fast.issues !== null) expect(fast.issues).toEqual(schema.issues);
      if (fast.issues === null) accepted += 1;
    }
    // Both verdicts occur often enough to mean something.
    expect(accepted).toBeGreaterThan(CASES / 5);
    expect(accepted).toBeLessThan(CASES - CASES / 5);
  });
});

describe('decodeEntryBody (the readers side)', () => {
  it(`ok: the same entries or the same errors as the schema alone (${CASES} seeded cases)`, () => {
    const random = generator(SEED + 1);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const encoded = new Uint8Array(pick(random, [packers[0]!, packers[0]!, ...packers]).pack(candidate(random)));
      // Now and then a byte changed (most such bodies are not msgpack, or not canonical).
      if (random() < 0.1) encoded[Math.floor(random() * encoded.byteLength)] = Math.floor(random() * 256);
      const fast = outcome(() => decodeEntryBody(encoded, 'f', 40, 3));
      expect(fast, `case ${i}`).toStrictEqual(outcome(() => decodeEntryBodyBySchema(encoded, 'f', 40, 3)));
      if ((fast as { ok?: unknown }).ok !== undefined) accepted += 1;
    }
    expect(accepted).toBeGreaterThan(CASES / 5);
  });

  it('ok: a "__proto__" key in meta stays a plain key on both paths', () => {
    const body = { ...validBody(generator(7)), meta: JSON.parse('{"__proto__": {"x": 1}}') };
    const encoded = new Uint8Array(packers[0]!.pack(body));
    const decoded = decodeEntryBody(encoded, 'f', 0);
    expect(Object.keys(decoded.meta!)).toEqual(['__proto__']);
    expect(decoded).toStrictEqual(decodeEntryBodyBySchema(encoded, 'f', 0));
  });
});

describe('checkCanonicalWrite (a reader\'s first pass)', () => {
  it(`ok: accepts only plain write bodies decodeEntryBody accepts, and finds their fields (${CASES} seeded cases)`, () => {
    const random = generator(SEED + 2);
    let plain = 0;
    for (let i = 0; i < CASES; i++) {
      const body = candidate(random);
      const encoded = new Uint8Array(pick(random, [packers[0]!, packers[0]!, ...packers]).pack(body));
      if (random() < 0.1) encoded[Math.floor(random() * encoded.byteLength)] = Math.floor(random() * 256);
      const seq = typeof body.seq === 'number' && Number.isSafeInteger(body.seq) ? body.seq : 1;
      const found = { prevHashAt: -1, changesetAt: -1, changesetLength: -1, time: -1 };
      if (!checkCanonicalWrite(encoded, seq, found)) continue;
      plain += 1;
      const decoded = decodeEntryBody(encoded, 'f', 40, seq);
      expect({ seq: decoded.seq, kind: decoded.kind, meta: decoded.meta }, `case ${i}`).toEqual({ seq, kind: 'write', meta: null });
      expect([decoded.sql, decoded.snapshot, decoded.undoes, decoded.rowids, decoded.at], `case ${i}`).toEqual([undefined, undefined, undefined, undefined, undefined]);
      expect(encoded.subarray(found.prevHashAt, found.prevHashAt + 32)).toEqual(decoded.prevHash);
      expect(encoded.subarray(found.changesetAt, found.changesetAt + found.changesetLength)).toEqual(decoded.changeset);
      expect(found.time).toBe(decoded.time);
      // Another entry's seq is left to decodeEntryBody (whose caller names the mismatch).
      expect(checkCanonicalWrite(encoded, seq + 1, found)).toBe(false);
    }
    expect(plain).toBeGreaterThan(CASES / 20);
  });
});

describe('checksumAt (the frame CRC)', () => {
  it('ok: equals zlib crc32 for every length 0..2100 and start, chained or not', () => {
    const random = generator(SEED + 3);
    const bytes = Uint8Array.from({ length: 2200 }, () => Math.floor(random() * 256));
    for (let length = 0; length <= 2100; length++) {
      const start = Math.floor(random() * 50);
      const initial = length % 3 === 0 ? 0 : Math.floor(random() * 2 ** 32);
      expect(checksumAt(bytes, start, start + length, initial), `length ${length}`).toBe(crc32(bytes.subarray(start, start + length), initial) >>> 0);
    }
  });
});

describe('hashEntryBodyInto (a reader\'s first pass)', () => {
  it('ok: writes the digest hashEntryBody returns, at the offset given, nothing else', () => {
    const random = generator(SEED + 4);
    for (let i = 0; i < 500; i++) {
      const body = Uint8Array.from({ length: 1 + Math.floor(random() * 600) }, () => Math.floor(random() * 256));
      const out = new Uint8Array(40).fill(0xaa);
      hashEntryBodyInto(body, out, 5);
      expect(out.subarray(5, 37), `case ${i}`).toEqual(hashEntryBody(body));
      expect([...out.subarray(0, 5), ...out.subarray(37)]).toEqual(new Array(8).fill(0xaa));
    }
  });
});
