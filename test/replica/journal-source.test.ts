/**
 * The local source's head reads: after a change hint ('no-wait') it never waits for a writer holding the
 * primary's lock (its marker follows the COMMIT), while an ordinary read waits and is authoritative.
 * Real trails, a real lock held by another connection.
 */
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/index.js';
import { openJournalSource } from '../../src/replica/journal-source.js';
import { tempPrimary } from './helpers.js';

describe('openJournalSource: readHead', () => {
  it('ok: "no-wait" returns the last head known while a writer holds the primary; the marker moves it on', async () => {
    const { trail, path } = await tempPrimary('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    await trail.write((db) => db.exec('INSERT INTO t VALUES (1)'));
    const source = openJournalSource(path);
    const holder = new DatabaseSync(path);
    try {
      expect(source.readHead().seq).toBe(1);
      holder.exec('BEGIN EXCLUSIVE');
      expect(source.readHead('no-wait').seq).toBe(1);
      let code: unknown = null;
      try {
        source.readHead('wait');
      } catch (error) {
        code = error instanceof ChangetrailError ? error.code : error;
      }
      expect(code).toBe('SQLITE_ERROR'); // waited its timeout for the lock, then said so
      holder.exec('ROLLBACK');
      await trail.write((db) => db.exec('INSERT INTO t VALUES (2)'));
      expect(source.readHead('no-wait').seq).toBe(2);
    } finally {
      holder.close();
      source.close();
      await trail.close();
    }
  });
});
