/**
 * Roll forward: a database replaced by an older copy (sqlite3's .backup, or a stamped backup put back) is
 * refused by every command with DATABASE_BEHIND_JOURNAL; `changetrail recover` replays the missing entries
 * (data, migrations, undo) exactly, after which the database equals what it was and normal writes work.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { backup, openTrail } from '../../src/index.js';
import { dumpDatabase, createRandom } from '../apply/helpers.js';
import { MIGRATIONS, SCHEMA_SQL, randomOperation } from '../apply/workload.js';
import { tempDir } from '../helpers/db.js';
import { digestFile, runCli } from './helpers.js';

/** Digests (rowids of keyed rowid tables included, except rows migrations insert) and a rowid-free dump. */
function state(path: string): unknown {
  const { ratings: _ratings, ...digests } = digestFile(path);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const dump = Object.fromEntries(Object.entries(dumpDatabase(db)).filter(([table]) => !table.startsWith('_changetrail')));
    dump['#schema'] = dump['#schema']!.filter((row) => !row.includes('_changetrail'));
    return { digests, dump };
  } finally {
    db.close();
  }
}

/** Runs transactions `from..to` of the workload; returns the head seq afterwards (no-op writes add no entry). */
async function workload(path: string, from: number, to: number, seed: number): Promise<number> {
  const trail = await openTrail(path, { lock: { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 } });
  const random = createRandom(seed);
  const migrated = new Set([...MIGRATIONS.keys()].filter((index) => index < from));
  try {
    for (let index = from; index <= to; index++) {
      const migration = MIGRATIONS.get(index);
      if (migration !== undefined) {
        migrated.add(index);
        await trail.migrate(migration);
      } else {
        await trail.write((db) => {
          for (let operation = 0; operation < 1 + random.int(5); operation++) randomOperation(db, random, migrated);
        });
      }
    }
    return (await trail.status()).headSeq;
  } finally {
    await trail.close();
  }
}

describe('changetrail recover', () => {
  it('ok: a .backup copy put back is refused, then rolled forward across migrations, equal, and writable', async () => {
    const dir = tempDir('ct-recover-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec(SCHEMA_SQL);
    setup.close();
    const oldSeq = await workload(path, 1, 10, 0x5eed0a01);
    execFileSync('sqlite3', [path, `.backup ${join(dir, 'old.db')}`]);
    const headSeq = await workload(path, 11, 30, 0x5eed0a02);
    const expected = state(path);
    copyFileSync(join(dir, 'old.db'), path);
    rmSync(`${path}-journal`, { force: true });
    const refused = runCli(['status', path, '--json']);
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.stderr.trim().split('\n').at(-1)!).error).toMatchObject({ code: 'DATABASE_BEHIND_JOURNAL' });
    const recovered = runCli(['recover', path, '--json']);
    expect(recovered.status, recovered.stderr).toBe(0);
    expect(JSON.parse(recovered.stdout.toString())).toMatchObject({ applied: { from: oldSeq + 1, to: headSeq } });
    expect(state(path)).toEqual(expected);
    expect(runCli(['exec', path, `INSERT INTO kv(k, v) VALUES ('after-recover', 1)`]).status).toBe(0);
    expect(runCli(['verify', path]).status).toBe(0);
    const again = runCli(['recover', path, '--json']);
    expect(JSON.parse(again.stdout.toString())).toMatchObject({ applied: null });
  });

  it('ok: a stamped backup put back in place rolls forward too', async () => {
    const dir = tempDir('ct-recover-stamped-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec(SCHEMA_SQL);
    setup.close();
    await workload(path, 1, 12, 0x5eed0a03);
    const stamp = await backup(path, join(dir, 'stamped.db'));
    const headSeq = await workload(path, 13, 20, 0x5eed0a04);
    const expected = state(path);
    copyFileSync(join(dir, 'stamped.db'), path);
    const recovered = runCli(['recover', path, '--json']);
    expect(recovered.status, recovered.stderr).toBe(0);
    expect(JSON.parse(recovered.stdout.toString())).toMatchObject({ applied: { from: stamp.seq + 1, to: headSeq } });
    expect(state(path)).toEqual(expected);
    const db = new DatabaseSync(path, { readOnly: true });
    expect(db.prepare(`SELECT name FROM sqlite_schema WHERE name = '_changetrail_backup'`).get()).toBeUndefined();
    db.close();
    const trail = await openTrail(path);
    expect(await trail.write((db) => db.exec(`INSERT INTO kv(k, v) VALUES ('x', 2)`))).not.toBeNull();
    await trail.close();
  });
});
