/**
 * The export, restore and backup commands through the built CLI (real processes), and a stamped backup taken
 * while three writer processes load the database: restoring from it reaches the head equal.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, readBackupStamp, restoreTo } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';
import { WORKLOAD_SCHEMA } from '../helpers/checker.js';
import { startWriter, waitFor } from '../helpers/processes.js';
import { buildTriggerTrail, digestFile, runCli, runSqlite3, type BuiltTrail } from './helpers.js';

describe('changetrail export / restore / backup', () => {
  let built: BuiltTrail;
  beforeAll(async () => {
    built = await buildTriggerTrail(0x5eed0e03, 30);
  });

  it('ok: export sql -o, applied by sqlite3 to a restore, equals restore --at', () => {
    const x = join(built.dir, 'cli-x.db');
    const y = join(built.dir, 'cli-y.db');
    const script = join(built.dir, 'cli.sql');
    expect(runCli(['restore', built.path, '--at', '5', '-o', x]).status).toBe(0);
    const restored = runCli(['restore', built.path, '--at', '20', '-o', y, '--json']);
    expect(restored.status).toBe(0);
    expect(JSON.parse(restored.stdout.toString())).toMatchObject({ at: { seq: 20 }, base: { kind: 'genesis', seq: 0 }, applied: 20 });
    const exported = runCli(['export', built.path, '--since', '5', '--until', '20', '--format', 'sql', '-o', script]);
    expect(exported.status).toBe(0);
    runSqlite3(x, script);
    expect(digestFile(x)).toEqual(digestFile(y));
  });

  it('err: restore refuses to overwrite without --force', () => {
    const out = join(built.dir, 'exists.db');
    writeFileSync(out, 'keep me');
    const refused = runCli(['restore', built.path, '--at', '3', '-o', out, '--json']);
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.stderr).error).toMatchObject({ code: 'OUTPUT_EXISTS' });
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(runCli(['restore', built.path, '--at', '3', '-o', out, '--force']).status).toBe(0);
  });

  it('err: a changeset across a schema entry is refused with a code and a hint', () => {
    const refused = runCli(['export', built.path, '--since', '0', '--format', 'changeset', '--json']);
    expect(refused.status).toBe(1);
    const error = JSON.parse(refused.stderr.trim().split('\n').at(-1)!).error;
    expect(error).toMatchObject({ code: 'EXPORT_RANGE_UNSUPPORTED', details: { seq: built.schemaSeqs[0], kind: 'schema', format: 'changeset' } });
    expect(error.details.hint).toContain('--format sql');
  });

  it('ok: --since @time says which entry it chose', () => {
    const result = runCli(['export', built.path, '--since', '@2000-01-01T00:00Z', '--until', '3', '--json']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString().trim().split('\n').length).toBeGreaterThan(0);
  });

  it('err: unknown format and missing --since are usage errors', () => {
    expect(runCli(['export', built.path, '--since', '0', '--format', 'xml']).status).toBe(2);
    expect(runCli(['export', built.path]).status).toBe(2);
  });
});

describe('backup', () => {
  it('ok: taken during 3 writers\' load; restore from it reaches the head equal', async () => {
    const dir = tempDir('ct-backup-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec(WORKLOAD_SCHEMA);
    setup.close();
    expect(runCli(['init', path]).status).toBe(0);
    const writers = [0, 1, 2].map(() => startWriter(path, 60, 5));
    await waitFor(() => writers.every((writer) => writer.acked.length >= 5), 60_000, 'writers under way');
    const out = join(dir, 'backup.db');
    const stamp = await backup(path, out);
    const cliBackup = runCli(['backup', path, join(dir, 'backup2.db'), '--json']);
    expect(cliBackup.status).toBe(0);
    const results = await Promise.all(writers.map((writer) => writer.exited));
    expect(results.every((result) => result.code === 0), writers.map((writer) => writer.stderr()).join('\n')).toBe(true);
    expect(stamp.seq).toBeGreaterThan(0);
    expect(stamp.seq).toBeLessThan(180);
    expect(readBackupStamp(out)).toEqual(stamp);
    // The backup is an ordinary database on its own.
    const opened = new DatabaseSync(out, { readOnly: true });
    expect(opened.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    expect(Number(opened.prepare('SELECT n FROM counter').get()!.n)).toBe(stamp.seq);
    opened.close();
    for (const from of [out, join(dir, 'backup2.db')]) {
      const restored = join(dir, `from-${from.endsWith('2.db') ? 2 : 1}.db`);
      const result = await restoreTo(path, restored, { at: 180, from });
      expect(result.base).toMatchObject({ kind: 'backup', seq: readBackupStamp(from)!.seq });
      expect(result.applied).toBe(180 - result.base.seq);
      expect(digestFile(restored)).toEqual(digestFile(path));
    }
    // A backup is refused as the base of an earlier point.
    await expect(restoreTo(path, join(dir, 'early.db'), { at: 1, from: out })).rejects.toMatchObject({ code: 'BACKUP_MISMATCH' });
    expect(existsSync(join(dir, 'early.db'))).toBe(false);
  });

  it('ok: a WAL database nobody holds open is backed up, and no -wal/-shm is left beside it', async () => {
    const dir = tempDir('ct-backup-wal-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    setup.close();
    expect(runCli(['init', path, '--journal-mode', 'wal']).status).toBe(0);
    expect(runCli(['exec', path, "INSERT INTO t VALUES (1, 'a'), (2, 'b')"]).status).toBe(0);
    const before = readFileSync(path);
    const result = runCli(['backup', path, join(dir, 'nightly.db'), '--json']);
    expect(result.stderr).toBe('');
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.toString())).toMatchObject({ seq: 1 });
    expect(readBackupStamp(join(dir, 'nightly.db'))).toMatchObject({ seq: 1 });
    expect(existsSync(`${path}-wal`) || existsSync(`${path}-shm`)).toBe(false);
  });
});
