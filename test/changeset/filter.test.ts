import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import {
  decodeChangeset, encodeChangeset, filterChangeset, summarizeChangeset, type Changeset, type ChangesetFilter,
} from '../../src/changeset/index.js';
import { ChangetrailError } from '../../src/errors.js';
import { createTables, randomSchema, randomWrites, Rng, runSeed, withSeed, Writer } from './workload.js';

const seed = runSeed();
/** SQLite compares table names ASCII-case-insensitively: other letters keep their case. */
const asciiUpper = (name: string): string => name.replace(/[a-z]/g, (letter) => letter.toUpperCase());
const asciiLower = (name: string): string => name.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const EXAMPLE_CHANGESET = hex(`
  54050100000000740017000100000000000000020303626f62000000000305626f626279000000090001000000000000
  000303056361726f6c02400a0000000000000401ff030178120001000000000000000403046461766502bfe00000000000
  00040001000000000000012c`);

/** What filterChangeset should return, computed on the decoded form. */
function expectedFilter(bytes: Uint8Array, filter: ChangesetFilter, names: string[] | null): Changeset {
  const tables = decodeChangeset(bytes).tables
    .filter((table) => names === null || names.includes(asciiLower(table.name)))
    .map((table) => ({ ...table, changes: table.changes.filter((change) => filter.indirect === undefined || change.indirect === filter.indirect) }))
    .filter((table) => table.changes.length > 0);
  return { tables };
}

function sessionWithTriggers(rng: Rng): { changeset: Uint8Array; patchset: Uint8Array; names: string[] } {
  const db = new DatabaseSync(':memory:');
  const writer = new Writer(db);
  const options = { signedZero: true, longText: 0 };
  const tables = randomSchema(rng);
  createTables(rng, db, writer, tables, options);
  const session = db.createSession();
  randomWrites(rng, writer, tables, 40, options);
  const captured = { changeset: session.changeset(), patchset: session.patchset(), names: tables.map((table) => table.name) };
  db.close();
  return captured;
}

describe('filterChangeset', () => {
  it('ok: keeps exactly the changes of the chosen tables and directness, bytes unchanged', () => {
    const rng = new Rng(seed);
    let indirectSeen = 0;
    withSeed(seed, () => {
      for (let run = 0; run < 60; run++) {
        const { changeset, patchset, names } = sessionWithTriggers(rng);
        for (const bytes of [changeset, patchset]) {
          const chosen = names.filter(() => rng.chance(0.5));
          const spelled = chosen.map((name) => (rng.chance(0.5) ? asciiUpper(name) : name));
          const folded = chosen.map(asciiLower);
          for (const filter of [{}, { indirect: true }, { indirect: false }, { tables: spelled }, { tables: spelled, indirect: true }] as ChangesetFilter[]) {
            const result = filterChangeset(bytes, filter);
            expect(decodeChangeset(result)).toEqual(expectedFilter(bytes, filter, filter.tables === undefined ? null : folded));
            expect(Buffer.from(encodeChangeset(decodeChangeset(result)))).toEqual(Buffer.from(result));
          }
          const byPredicate = filterChangeset(bytes, { tables: (name) => folded.includes(asciiLower(name)) });
          expect(Buffer.from(byPredicate)).toEqual(Buffer.from(filterChangeset(bytes, { tables: spelled })));
          indirectSeen += decodeChangeset(filterChangeset(bytes, { indirect: true })).tables.length;
        }
      }
    });
    expect(indirectSeen).toBeGreaterThan(0);
  });

  it('ok: no criteria keeps a session changeset byte for byte', () => {
    expect(Buffer.from(filterChangeset(EXAMPLE_CHANGESET, {}))).toEqual(Buffer.from(EXAMPLE_CHANGESET));
    expect(filterChangeset(EXAMPLE_CHANGESET, { tables: ['other'] })).toEqual(new Uint8Array(0));
  });

  it('err: malformed bytes and bad filters', () => {
    expect(() => filterChangeset(EXAMPLE_CHANGESET.subarray(0, 50), {})).toThrow(ChangetrailError);
    expect(() => filterChangeset(EXAMPLE_CHANGESET, { tables: 't' } as never)).toThrow(TypeError);
    expect(() => filterChangeset(EXAMPLE_CHANGESET, { indirect: 1 } as never)).toThrow(TypeError);
  });
});

describe('summarizeChangeset', () => {
  it('ok: counts per table of the worked example', () => {
    expect(summarizeChangeset(EXAMPLE_CHANGESET)).toEqual([{ table: 't', inserts: 1, updates: 1, deletes: 1 }]);
    expect(summarizeChangeset(new Uint8Array(0))).toEqual([]);
  });

  it('ok: repeated groups of one table (any letter case) merge; order of first appearance', () => {
    const bytes = hex(`54 01 01 6200 12 00 01 0000000000000001
      54 01 01 4100
      54 01 01 4200 09 00 01 0000000000000002 09 01 01 0000000000000003
      50 01 01 6100 17 00 01 0000000000000004`);
    expect(summarizeChangeset(bytes)).toEqual([{ table: 'b', inserts: 1, updates: 0, deletes: 2 }, { table: 'A', inserts: 0, updates: 1, deletes: 0 }]);
  });

  it('ok: agrees with decodeChangeset on random sessions', () => {
    const rng = new Rng(seed + 1);
    withSeed(seed, () => {
      for (let run = 0; run < 30; run++) {
        const { changeset, patchset } = sessionWithTriggers(rng);
        for (const bytes of [changeset, patchset]) {
          const counts = new Map<string, [number, number, number]>();
          for (const table of decodeChangeset(bytes).tables) {
            const count = counts.get(table.name) ?? [0, 0, 0];
            for (const change of table.changes) count[['insert', 'update', 'delete'].indexOf(change.op)]!++;
            counts.set(table.name, count);
          }
          expect(summarizeChangeset(bytes)).toEqual([...counts].map(([table, [inserts, updates, deletes]]) => ({ table, inserts, updates, deletes })));
        }
      }
    });
  });

  it('err: malformed bytes give CHANGESET_MALFORMED with the offset', () => {
    expect(() => summarizeChangeset(EXAMPLE_CHANGESET.subarray(0, 108))).toThrow(expect.objectContaining({
      code: 'CHANGESET_MALFORMED', details: { offset: 100, reason: 'truncated value' },
    }));
  });
});
