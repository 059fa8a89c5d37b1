/**
 * Semantic round trips on real databases: applying a changeset and then its inverse restores the
 * database exactly (values and storage types), and applying a combination equals applying the parts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { combineChangesets, invertChangeset } from '../../src/changeset/index.js';
import {
  createTables, dumpDatabase, openCopy, randomSchema, randomWrites, Rng, runSeed, saveSnapshot, withSeed, Writer,
  type ValueOptions,
} from './workload.js';

const seed = runSeed();
const directory = mkdtempSync(join(tmpdir(), 'changetrail-changeset-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** No ±0.0 (0.0 -> -0.0 updates are not captured, reference §5); long texts are covered elsewhere. */
const OPTIONS: ValueOptions = { signedZero: false, longText: 0 };
const RUNS = 60;

interface History {
  /** Snapshot paths: states[i] before session i, states[n] at the end. */
  states: string[];
  dumps: string[][];
  changesets: Uint8Array[];
  patchsets: Uint8Array[];
}

function record(rng: Rng, run: number, sessionCount: number): History {
  const db = new DatabaseSync(':memory:');
  const writer = new Writer(db);
  const tables = randomSchema(rng, { wide: run % 8 === 0 });
  createTables(rng, db, writer, tables, OPTIONS);
  const history: History = { states: [], dumps: [], changesets: [], patchsets: [] };
  const snapshot = (): void => {
    const path = join(directory, `run${run}-state${history.states.length}.db`);
    saveSnapshot(db, path);
    history.states.push(path);
    history.dumps.push(dumpDatabase(db));
  };
  snapshot();
  for (let index = 0; index < sessionCount; index++) {
    const session = db.createSession();
    randomWrites(rng, writer, tables, rng.range(1, 40), OPTIONS);
    history.changesets.push(session.changeset());
    history.patchsets.push(session.patchset());
    session.close();
    snapshot();
  }
  db.close();
  return history;
}

let copies = 0;
/** Applies each changeset in turn to a copy of `state` and returns the resulting dump. */
function applied(state: string, changesets: Uint8Array[]): string[] {
  const db = openCopy(DatabaseSync, state, join(directory, `copy${copies++}.db`));
  try {
    for (const changeset of changesets) expect(db.applyChangeset(changeset)).toBe(true);
    return dumpDatabase(db);
  } finally {
    db.close();
  }
}

describe('invertChangeset on real databases', () => {
  it('ok: applying c then invert(c) restores every row, value and storage type', () => {
    const rng = new Rng(seed);
    withSeed(seed, () => {
      for (let run = 0; run < RUNS; run++) {
        const history = record(rng, run, 2);
        history.changesets.forEach((changeset, index) => {
          expect(applied(history.states[index]!, [changeset])).toEqual(history.dumps[index + 1]);
          expect(applied(history.states[index + 1]!, [invertChangeset(changeset)])).toEqual(history.dumps[index]);
          expect(Buffer.from(invertChangeset(invertChangeset(changeset)))).toEqual(Buffer.from(changeset));
        });
      }
    });
  });
});

describe('combineChangesets on real databases', () => {
  it('ok: applying combine([a, b, ...]) equals applying a, b, ... in turn, for changesets and patchsets', () => {
    const rng = new Rng(seed + 1);
    withSeed(seed, () => {
      for (let run = 0; run < RUNS; run++) {
        const history = record(rng, RUNS + run, rng.range(2, 4));
        const end = history.dumps[history.dumps.length - 1];
        expect(applied(history.states[0]!, history.changesets)).toEqual(end);
        expect(applied(history.states[0]!, [combineChangesets(history.changesets)])).toEqual(end);
        expect(applied(history.states[0]!, [combineChangesets(history.patchsets)])).toEqual(end);
        // And the combination inverts as a whole: end state back to the start state.
        expect(applied(history.states.at(-1)!, [invertChangeset(combineChangesets(history.changesets))])).toEqual(history.dumps[0]);
        // Associativity in effect: combining partial combinations gives the same database.
        const [first, ...rest] = history.changesets;
        expect(applied(history.states[0]!, [combineChangesets([first!, combineChangesets(rest)])])).toEqual(end);
      }
    });
  });
});
