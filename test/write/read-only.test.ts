/** openTrailReader's refusals of what is not a tracked database. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrailReader } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

describe('openTrailReader', () => {
  it('err: a file that is not a SQLite database is NOT_A_DATABASE (as openTrail says), journal beside it or not', async () => {
    const path = join(tempDir('ct-reader-'), 'notes.db');
    writeFileSync(path, 'not a database\n');
    for (const journal of [false, true]) {
      if (journal) mkdirSync(`${path}.changes`);
      const error = await openTrailReader(path).then(async (reader) => reader.status(), (e: unknown) => e);
      expect(ChangetrailError.is(error, 'NOT_A_DATABASE') && error.details).toEqual({ path, reason: 'not a SQLite database' });
    }
    expect(readFileSync(path, 'utf8')).toBe('not a database\n');
  });
});
