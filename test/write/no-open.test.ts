/** T12: the library never opens (so never closes) the database file itself, in any operation. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';

const FIXTURE = new URL('./fixtures/no-open.mjs', import.meta.url).pathname;

describe('the POSIX close() hazard', () => {
  it('ok: no operation opens, reads or copies the database file through fs', () => {
    const path = join(tempDir('ct-noopen-'), 'app.db');
    const result = spawnSync(process.execPath, [FIXTURE, path], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const opened: string[] = JSON.parse(result.stdout);
    // The observation works: the journal's own files are seen.
    expect(opened.some((entry) => entry.includes('app.db.changes'))).toBe(true);
    const database = opened.filter((entry) => /\/app\.db(-journal|-wal|-shm)?$/.test(entry));
    expect(database).toEqual([]);
  });
});
