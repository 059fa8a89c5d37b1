/** Issue 8 item 3: a write whose changes net to nothing must leave the head row and the file's change counter consistent. */
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { dumpFile, tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? error.code : (error as Error).name;
  }
}

describe('a write that nets to no change', () => {
  for (const [name, body] of [
    ['insert then delete', (db: DatabaseSync) => db.exec(`INSERT INTO t VALUES (9, 'x'); DELETE FROM t WHERE id = 9`)],
    ['update and set back', (db: DatabaseSync) => db.exec(`UPDATE t SET name = 'z' WHERE id = 1; UPDATE t SET name = 'a' WHERE id = 1`)],
  ] as const) {
    it(`ok: ${name} after an earlier write of the same admission returns null and does not wedge the database`, async () => {
      const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)', { lock: { idleReleaseMs: 60_000 } });
      opened.push(trail);
      // Same admission: the lock is kept between the writes (idleReleaseMs), so the second write does not bump the epoch.
      expect(await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`))).toMatchObject({ seq: 1 });
      expect(await trail.write(body)).toBeNull();
      expect(await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`))).toMatchObject({ seq: 2 });
      await trail.close();
      // Another connection (as another process would) is admitted without a false FOREIGN_WRITE_DETECTED.
      const other = await openTrail(path);
      opened.push(other);
      expect(await codeOf(other.write((db) => db.exec(`INSERT INTO t VALUES (3, 'c')`)))).toBe('ok');
      expect(await other.write(body)).toBeNull();
      expect(await codeOf(other.write((db) => db.exec(`INSERT INTO t VALUES (4, 'd')`)))).toBe('ok');
      await other.close();
      const third = await openTrail(path);
      opened.push(third);
      expect(await codeOf(third.write((db) => db.exec(`INSERT INTO t VALUES (5, 'e')`)))).toBe('ok');
      expect((await third.verify({ replay: true })).headSeq).toBe(5);
      expect(dumpFile(path).t).toHaveLength(5);
    });
  }
});
