/**
 * Issue 8 item 2: a database restored from an older copy (its journal holds later committed entries) is
 * refused by every command with DATABASE_BEHIND_JOURNAL, and `openTrailForRecovery` + `rollForward`
 * (what `changetrail recover` builds on) replays the missing entries, after which it opens normally.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyChangesetExactlyInTransaction } from '../../src/apply/apply-entry.js';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { openTrailForRecovery } from '../../src/write/trail.js';
import { dumpFile, tempDir } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function sqlite3(path: string, command: string): void {
  const result = spawnSync('sqlite3', [path, command], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`sqlite3 ${command}: ${result.stderr}`);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? error.code : String(error);
  }
}

/** app.db with entries 1..total, restored (cp) from a `.backup` taken after entry `at`. */
function restoredDatabase(at: number, total: number): { path: string; journalSeq: number; expected: Record<string, unknown[]> } {
  const dir = tempDir('ct-behind-');
  const path = join(dir, 'app.db');
  sqlite3(path, 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
  expect(cli('init', path).code).toBe(0);
  for (let i = 1; i <= total; i++) {
    expect(cli('exec', path, `INSERT INTO t VALUES (${i}, 'row ${i}')`).code).toBe(0);
    if (i === at) sqlite3(path, `.backup ${join(dir, 'bak.db')}`);
  }
  const expected = dumpFile(path);
  copyFileSync(join(dir, 'bak.db'), path);
  return { path, journalSeq: total, expected };
}

describe('a database restored from an older copy', () => {
  it('err: every command refuses it with DATABASE_BEHIND_JOURNAL and names changetrail recover', () => {
    const { path } = restoredDatabase(2, 5);
    for (const command of [['status', path], ['log', path], ['log', path, '--kind', 'write'], ['show', path, '1'], ['verify', path], ['verify', path, '--replay'], ['exec', path, `INSERT INTO t VALUES (99, 'x')`], ['resync', path]]) {
      const run = cli(...command, '--json');
      expect(run.code, `${command.join(' ')}: ${run.stdout}`).not.toBe(0);
      expect(run.stderr, command.join(' ')).toContain('DATABASE_BEHIND_JOURNAL');
      expect(run.stderr, command.join(' ')).toContain('changetrail recover');
    }
    // One way forward: the human hint names recover too, not a new history that would drop entries 3..5.
    const human = cli('status', path).stderr.split('\n').find((line) => line.startsWith('hint:'));
    expect(human).toContain(`changetrail recover ${path}`);
    expect(human).not.toContain('--new-history');
    // Nothing was changed: the journal still holds entries 3..5.
    expect(dumpFile(path).t).toHaveLength(2);
  });

  it('err: also when only one entry is missing (the head marker names it) and across a segment rotation', async () => {
    const one = restoredDatabase(4, 5);
    expect(await codeOf(openTrail(one.path))).toBe('DATABASE_BEHIND_JOURNAL');
    // Many segments: the database's tail segment is complete, later segments hold the missing entries.
    const dir = tempDir('ct-behind-');
    const path = join(dir, 'app.db');
    sqlite3(path, 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
    const trail = await openTrail(path, { segmentBytesTarget: 600 });
    for (let i = 1; i <= 3; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, 'x')`));
    await trail.close();
    sqlite3(path, `.backup ${join(dir, 'bak.db')}`);
    const again = await openTrail(path, { segmentBytesTarget: 600 });
    for (let i = 4; i <= 12; i++) await again.write((db) => db.exec(`INSERT INTO t VALUES (${i}, '${'y'.repeat(100)}')`));
    await again.close();
    copyFileSync(join(dir, 'bak.db'), path);
    rmSync(join(`${path}.changes`, 'head'));
    const error = await openTrail(path).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DATABASE_BEHIND_JOURNAL', details: { databaseSeq: 3, hint: 'changetrail recover <db>' } });
  });

  it('ok: rollForward replays the missing entries exactly; then every command works', async () => {
    const { path, expected } = restoredDatabase(2, 5);
    const trail = await openTrailForRecovery(path);
    opened.push(trail);
    expect(trail.behind).toEqual({ databaseSeq: 2, journalSeq: 5 });
    expect(await codeOf(trail.write((db) => db.exec(`INSERT INTO t VALUES (99, 'x')`)))).toBe('DATABASE_BEHIND_JOURNAL');
    const seen: number[] = [];
    const range = await trail.rollForward((db, entry) => {
      seen.push(entry.seq);
      applyChangesetExactlyInTransaction(db, entry.changeset, { seq: entry.seq });
    });
    expect(range).toEqual({ from: 3, to: 5 });
    expect(seen).toEqual([3, 4, 5]);
    expect(trail.behind).toBeNull();
    await trail.close();
    expect(dumpFile(path)).toEqual(expected);
    const verify = cli('verify', path, '--replay');
    expect(verify.code, verify.stderr).toBe(0);
    expect(cli('exec', path, `INSERT INTO t VALUES (6, 'six')`).code).toBe(0);
    const reopened = await openTrail(path);
    opened.push(reopened);
    expect((await reopened.verify({ replay: true })).headSeq).toBe(6);
  });

  it('ok: a crashed writer\'s one uncommitted frame is not "behind" (it is truncated by the next write)', async () => {
    const dir = tempDir('ct-behind-');
    const path = join(dir, 'app.db');
    sqlite3(path, 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
    const trail = await openTrail(path);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'x')`));
    await trail.close();
    copyFileSync(path, join(dir, 'bak.db'));
    const again = await openTrail(path);
    await again.write((db) => db.exec(`INSERT INTO t VALUES (2, 'x')`));
    await again.close();
    // Entry 2's frame without its commit, and no head marker naming it: exactly what a crash before COMMIT leaves.
    copyFileSync(join(dir, 'bak.db'), path);
    rmSync(join(`${path}.changes`, 'head'));
    const reopened = await openTrail(path);
    opened.push(reopened);
    expect(await reopened.write((db) => db.exec(`INSERT INTO t VALUES (3, 'z')`))).toMatchObject({ seq: 2 });
    expect((await reopened.verify({ replay: true })).headSeq).toBe(2);
  });
});

describe('recovery and I/O errors (issue 8 item 8)', () => {
  it('err: an I/O error while counting frames past the head is IO_ERROR, never taken for their end (nothing truncated)', () => {
    const { path } = restoredDatabase(1, 4);
    const segment = join(`${path}.changes`, '00000000000000000001.seg');
    rmSync(join(`${path}.changes`, 'head'));
    const sizeBefore = statSync(segment).size;
    const script = `import { openTrail } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).pathname)};
      try { const t = await openTrail(process.argv[1]); await t.write((db) => db.exec("INSERT INTO t VALUES (50, 'x')")); await t.close(); console.log('ok'); }
      catch (e) { console.log(e.code); }`;
    for (const hit of ['1', '2']) {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, path], { encoding: 'utf8', env: { ...process.env, CHANGETRAIL_FAULT_AT: `reconcile-read:${hit}:EIO` } });
      expect(run.stdout.trim(), run.stderr).toBe('IO_ERROR');
      expect(statSync(segment).size).toBe(sizeBefore);
    }
    const plain = spawnSync(process.execPath, ['--input-type=module', '-e', script, path], { encoding: 'utf8' });
    expect(plain.stdout.trim(), plain.stderr).toBe('DATABASE_BEHIND_JOURNAL');
    expect(statSync(segment).size).toBe(sizeBefore);
  });
});
