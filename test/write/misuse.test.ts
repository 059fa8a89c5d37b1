/** Issue 8 §2: misuse reported well — a body returning a promise, lock options that could only fail at the first write. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

const DIST = new URL('../../dist/index.js', import.meta.url).pathname;

function database(): string {
  const path = join(tempDir('ct-misuse-'), 'app.db');
  const db = new DatabaseSync(path);
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY)');
  db.close();
  return path;
}

describe('misuse', () => {
  it('err: a body returning a promise is a TypeError, rolled back, and its later rejection does not crash the process', () => {
    const script = `import { openTrail } from ${JSON.stringify(DIST)};
      const trail = await openTrail(process.argv[1]);
      const late = (db) => { db.exec('INSERT INTO t VALUES (1)'); return new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 20)); };
      try { await trail.write(late); console.log('resolved'); } catch (e) { console.log(e.name); }
      await new Promise((r) => setTimeout(r, 200));
      console.log(trail.read((db) => db.prepare('SELECT count(*) AS n FROM t').get().n));
      await trail.close();
      console.log('alive');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, database()], { encoding: 'utf8' });
    expect(run.stdout.trim().split('\n'), run.stderr).toEqual(['TypeError', '0', 'alive']);
    expect(run.status).toBe(0);
  });

  it('err: lock.heartbeatMs above staleMs / 3 is a RangeError at openTrail, before anything is created', async () => {
    const path = database();
    await expect(openTrail(path, { lock: { staleMs: 900, heartbeatMs: 400 } })).rejects.toThrow(RangeError);
    await expect(openTrail(path, { lock: { heartbeatMs: 10_000 } })).rejects.toThrow(/heartbeatMs/);
    const trail = await openTrail(path, { lock: { staleMs: 900, heartbeatMs: 300 } });
    await trail.write((db) => db.exec('INSERT INTO t VALUES (1)'));
    await trail.close();
  });
});
