/** A single admitted write touching 1,000,000 rows: journaled as one entry that reads back and replays. */
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { replayOntoGenesis, tempTrail } from '../helpers/db.js';

describe('large transactions', () => {
  it('ok: one write of 1,000,000 rows is one verified entry that replays to the same table', async () => {
    const rows = 1_000_000;
    const { trail, path } = await tempTrail('CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    try {
      const entry = await trail.write((db) => db.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO big SELECT i, i * 7 FROM c`));
      expect(entry!.tables).toEqual([{ table: 'big', inserts: rows, updates: 0, deletes: 0 }]);
      const changesets = [];
      for await (const e of trail.entries()) changesets.push(e.changeset);
      expect(changesets).toHaveLength(1);
      expect(changesets[0]!.byteLength).toBeGreaterThan(rows * 20);
      await trail.close();
      const replica = new DatabaseSync(replayOntoGenesis(trail.journalDir, changesets));
      const source = new DatabaseSync(path);
      const summary = 'SELECT count(*) AS n, sum(id) AS ids, sum(n) AS ns FROM big';
      expect(replica.prepare(summary).get()).toEqual(source.prepare(summary).get());
      replica.close();
      source.close();
    } finally {
      await trail.close();
    }
  });
});
