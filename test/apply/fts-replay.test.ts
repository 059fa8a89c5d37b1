/**
 * Exact replay over FTS5 external-content indexes kept by triggers, on a TEXT key and a composite key, plus a
 * regular FTS5 table and an audit table written by a trigger: a seeded random workload of inserts, deletes,
 * re-inserts, key changes, REPLACEs and undos of random earlier entries (fts-workload.ts). Afterwards the
 * source and a replay of its journal give the same MATCH answers (rowids included), both pass FTS5
 * integrity-check and PRAGMA integrity_check, and verify --replay agrees. Undo is refused only with
 * ROW_CHANGED_LATER (or a foreign key conflict), never corrupts. More seeds: fts-replay.stress.ts.
 */
import { afterEach, describe, it } from 'vitest';
import type { Trail } from '../../src/index.js';
import { checkSeed } from './fts-workload.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

describe('exact replay over FTS5 (issue 8.1)', () => {
  for (const seed of [1, 2, 3]) {
    it(`ok: seed ${seed}: MATCH answers and integrity-checks equal between source and replay`, async () => {
      await checkSeed(opened, seed, 120);
    });
  }
});
