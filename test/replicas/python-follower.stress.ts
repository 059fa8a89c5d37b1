/**
 * npm run stress: the Python follower SIGKILLed CT_PYTHON_KILLS times (default 120) at random moments
 * while it catches up on a changetrail-written randomized workload (migrations, undo, a resync). After
 * every kill the replica must be exactly the journal's state at the position it recorded — a Node replay
 * of entries 1..seq — so no entry was applied twice, skipped, or half applied.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { replayJournal } from '../../src/apply/replay.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { createRandom } from '../apply/helpers.js';
import { MIGRATIONS, SCHEMA_SQL, randomOperation } from '../apply/workload.js';
import { tempTrail } from '../helpers/db.js';
import { startPython } from './python.js';
import { dumpState } from './state.js';

const KILLS = Number(process.env.CT_PYTHON_KILLS ?? 120);
const TRANSACTIONS = Number(process.env.CT_PYTHON_TRANSACTIONS ?? 80);

function replicaSeq(path: string): number {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    return Number((db.prepare('SELECT seq FROM _changetrail_replica WHERE id = 1').get() as { seq: number }).seq);
  } finally {
    db.close();
  }
}

describe('python follower under repeated SIGKILL', () => {
  it(`ok: ${KILLS} kills, and after each the replica is the journal's state at its recorded position`, async () => {
    const { trail, path, dir } = await tempTrail(SCHEMA_SQL);
    const random = createRandom(0x5eed0f15);
    const migrated = new Set<number>();
    try {
      for (let index = 1; index <= TRANSACTIONS; index++) {
        const migration = MIGRATIONS.get(index);
        if (migration !== undefined) {
          migrated.add(index);
          await trail.migrate(migration);
        } else if (index === 50) {
          const foreign = new DatabaseSync(path);
          foreign.exec(`INSERT OR REPLACE INTO kv(k, v) VALUES ('foreign', 1)`);
          foreign.close();
          await trail.resync();
        } else if (index % 9 === 0) {
          await trail.undo(readCommittedHead(path).seq).catch(() => null);
        } else {
          await trail.write((db) => {
            for (let i = 0; i < 1 + random.int(6); i++) randomOperation(db, random, migrated);
          });
        }
      }
      const head = readCommittedHead(path);
      const journal = openJournal(`${path}.changes`, head);
      const replica = join(dir, 'python.db');
      let kills = 0;
      let previous = 0;
      while (kills < KILLS) {
        const child = startPython(['replicate', path, replica], { CHANGETRAIL_READER_TEST_PAUSE_MS: '2' });
        const delay = 40 + random.int(300);
        const timer = setTimeout(() => child.kill('SIGKILL'), delay);
        const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
        clearTimeout(timer);
        if (signal === 'SIGKILL') kills++;
        const seq = replicaSeq(replica);
        expect(seq).toBeGreaterThanOrEqual(previous);
        previous = seq;
        const expected = join(dir, `replay-${kills}.db`);
        replayJournal(openJournal(`${path}.changes`, journal.positionAt(seq)), expected);
        expect(dumpState(replica), `after kill ${kills} at entry ${seq}`).toEqual(dumpState(expected));
        // Start over now and then, so kills also land in the first entries and in the resync.
        if (seq === head.seq) {
          rmSync(replica);
          previous = 0;
        }
        rmSync(expected);
      }
    } finally {
      await trail.close();
    }
  });
});
