/**
 * Corrupted and random bytes: every entry point either succeeds or throws a ChangetrailError with one of
 * its documented codes, never another exception, a hang or a huge allocation. Whatever is accepted
 * round-trips byte for byte, and whatever invert/combine accept, SQLite's C code accepts with the
 * same output (the TypeScript codec is at least as strict as SQLite and never differs from it).
 */
import { DatabaseSync } from 'node:sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  combineChangesets, decodeChangeset, encodeChangeset, filterChangeset, invertChangeset, summarizeChangeset,
} from '../../src/changeset/index.js';
import { ChangetrailError, type ErrorCode } from '../../src/errors.js';
import { craftGroups, craftTables } from './crafted.js';
import { loadOracle, SQLITE_OK, type Oracle } from './oracle.js';
import { createTables, randomSchema, randomWrites, Rng, runSeed, withSeed, Writer } from './workload.js';

const seed = runSeed();
let oracle: Oracle;
beforeAll(async () => {
  oracle = await loadOracle();
});

function seeds(rng: Rng): Uint8Array[] {
  const inputs: Uint8Array[] = [];
  for (let run = 0; run < 6; run++) {
    const db = new DatabaseSync(':memory:');
    const writer = new Writer(db);
    const options = { signedZero: true, longText: 0 };
    const tables = randomSchema(rng);
    createTables(rng, db, writer, tables, options);
    const session = db.createSession();
    randomWrites(rng, writer, tables, 15, options);
    inputs.push(session.changeset(), session.patchset());
    db.close();
  }
  for (let run = 0; run < 6; run++) {
    const kind = run % 2 === 0 ? 'changeset' as const : 'patchset' as const;
    inputs.push(encodeChangeset({ tables: craftGroups(rng, craftTables(rng, false), kind) }));
  }
  return inputs.filter((bytes) => bytes.length > 0);
}

function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  const bytes = Uint8Array.from(input);
  switch (rng.int(6)) {
    case 0: {
      for (let flips = rng.range(1, 3); flips > 0; flips--) bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
      return bytes;
    }
    case 1: return bytes.slice(0, rng.int(bytes.length));
    case 2: {
      const at = rng.int(bytes.length + 1);
      return Uint8Array.from([...bytes.subarray(0, at), ...rng.bytes(rng.range(1, 4)), ...bytes.subarray(at)]);
    }
    case 3: {
      const at = rng.int(bytes.length);
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + rng.range(1, 4))]);
    }
    case 4: {
      bytes[rng.int(bytes.length)] = rng.pick([0x00, 0x05, 0x06, 0x7f, 0x80, 0xff, 0x12, 0x17, 0x09, 0x54, 0x50]);
      return bytes;
    }
    default: return rng.bytes(rng.range(0, 64));
  }
}

/** Runs `call`; returns its result or the ChangetrailError code, failing on anything else. */
function attempt<T>(call: () => T, allowed: ErrorCode[]): T | ErrorCode {
  try {
    return call();
  } catch (error) {
    if (error instanceof ChangetrailError && allowed.includes(error.code)) {
      if (error.code === 'CHANGESET_MALFORMED') {
        expect(Number.isInteger(error.details.offset)).toBe(true);
        expect(typeof error.details.reason).toBe('string');
      }
      return error.code;
    }
    throw error;
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function expectSame(actual: Uint8Array, expected: Uint8Array, input: Uint8Array, what: string): void {
  if (!same(actual, expected)) {
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    expect.fail(`${what} of ${hex(input)}: ${hex(actual)} != oracle ${hex(expected)}`);
  }
}

function checkInput(bytes: Uint8Array, valid: Uint8Array): void {
  const MALFORMED: ErrorCode[] = ['CHANGESET_MALFORMED'];
  const decoded = attempt(() => decodeChangeset(bytes), MALFORMED);
  const summary = attempt(() => summarizeChangeset(bytes), MALFORMED);
  const filtered = attempt(() => filterChangeset(bytes, { indirect: false }), MALFORMED);
  const unfiltered = attempt(() => filterChangeset(bytes, {}), MALFORMED);
  const inverted = attempt(() => invertChangeset(bytes), [...MALFORMED, 'CHANGESET_KIND_UNSUPPORTED']);
  const combined = attempt(() => combineChangesets([bytes]), [...MALFORMED, 'CHANGESET_KIND_MISMATCH', 'CHANGESET_SCHEMA_MISMATCH']);
  attempt(() => combineChangesets([valid, bytes, valid]), [...MALFORMED, 'CHANGESET_KIND_MISMATCH', 'CHANGESET_SCHEMA_MISMATCH']);
  // The walkers share one reader: they accept the same inputs.
  expect(typeof summary === 'string').toBe(typeof filtered === 'string');
  expect(typeof summary === 'string').toBe(typeof unfiltered === 'string');
  expect(typeof decoded === 'string').toBe(typeof summary === 'string');
  if (typeof decoded !== 'string') expectSame(encodeChangeset(decoded), bytes, bytes, 'decode/encode');
  if (inverted instanceof Uint8Array) {
    const expected = oracle.invert(bytes);
    expect(expected.rc).toBe(SQLITE_OK);
    expectSame(inverted, expected.bytes, bytes, 'invert');
  }
  if (combined instanceof Uint8Array) {
    const expected = oracle.group([bytes]);
    expect(expected.rc).toBe(SQLITE_OK);
    expectSame(combined, expected.bytes, bytes, 'combine');
  }
}

describe('fuzz: corrupted input', () => {
  it('ok: mutated session output and random bytes only ever give the documented codes', () => {
    const rng = new Rng(seed);
    withSeed(seed, () => {
      const inputs = seeds(rng);
      let accepted = 0;
      for (let round = 0; round < 6000; round++) {
        const input = rng.pick(inputs);
        const mutated = mutate(rng, input);
        checkInput(mutated, input);
        if (!(typeof attempt(() => summarizeChangeset(mutated), ['CHANGESET_MALFORMED']) === 'string')) accepted++;
      }
      // Some mutations must survive parsing, or the round-trip and oracle checks above prove nothing.
      expect(accepted).toBeGreaterThan(300);
    });
  });

  it('ok: huge declared lengths and column counts are refused without allocating them', () => {
    const cases = ['54 87ffffff7f', '54 01 01 7400 12 00 03 87ffffff7f 61', '54 01 01 7400 12 00 04 8fffffff7f', '54 84800100'];
    for (const text of cases) {
      const bytes = Uint8Array.from(Buffer.from(text.replace(/ /g, ''), 'hex'));
      expect(attempt(() => decodeChangeset(bytes), ['CHANGESET_MALFORMED'])).toBe('CHANGESET_MALFORMED');
      expect(attempt(() => combineChangesets([bytes]), ['CHANGESET_MALFORMED'])).toBe('CHANGESET_MALFORMED');
    }
  });
});
