/**
 * Journal files are no more readable than the database (issue 9 §2.3) and are never opened through a
 * symlink or as anything but a regular file (§2.4). The attacks are the tests.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, database, jsonError, MAIN } from '../cli/run-cli.js';

/** Runs the CLI under `umask 022`, as a login shell would. */
function cliUmask022(args: string[]): { code: number | null; stderr: string } {
  const quoted = [process.execPath, MAIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const result = spawnSync('sh', ['-c', `umask 022; ${quoted}`], { encoding: 'utf8' });
  return { code: result.status, stderr: result.stderr };
}

function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
  for (const name of readdirSync(dir)) {
    const stat = statSync(join(dir, name));
    if (stat.isFile()) out[name] = (stat.mode & 0o777).toString(8);
  }
  return out;
}

describe('journal file permissions follow the database (§2.3)', () => {
  it('err: a 0600 database under umask 022 gets a 0700 journal directory and 0600 files', () => {
    const path = database('CREATE TABLE secrets(id INTEGER PRIMARY KEY, value TEXT)');
    chmodSync(path, 0o600);
    expect(cliUmask022(['init', path]).code).toBe(0);
    expect(cliUmask022(['exec', path, `INSERT INTO secrets VALUES (1, 'hunter2')`]).code).toBe(0);
    expect(cliUmask022(['resync', path]).code).toBe(0);
    const journal = modes(`${path}.changes`);
    expect(journal['.']).toBe('700');
    for (const file of ['manifest', 'head', 'genesis.db', 'snapshot-2.db', '00000000000000000001.seg']) expect(journal[file], file).toBe('600');
    expect(Object.entries(journal).filter(([name, mode]) => name !== '.' && mode !== '600')).toEqual([]);
  });

  it('ok: a 0640 database gives 0750 and 0640; an older, wider journal is narrowed at the next write', () => {
    const path = database();
    chmodSync(path, 0o640);
    expect(cliUmask022(['init', path]).code).toBe(0);
    expect(modes(`${path}.changes`)).toMatchObject({ '.': '750', manifest: '640', 'genesis.db': '640' });
    // A journal written before this rule (0755/0644) next to a database that is now 0600.
    chmodSync(`${path}.changes`, 0o755);
    for (const name of readdirSync(`${path}.changes`)) chmodSync(join(`${path}.changes`, name), 0o644);
    chmodSync(path, 0o600);
    expect(cliUmask022(['exec', path, `INSERT INTO t VALUES (1, 'a')`]).code).toBe(0);
    const journal = modes(`${path}.changes`);
    expect(journal['.']).toBe('700');
    expect(Object.entries(journal).filter(([name, mode]) => name !== '.' && mode !== '600')).toEqual([]);
  });
});

describe('journal files are not followed through symlinks (§2.4)', () => {
  function tracked(): string {
    const path = database();
    expect(cli(['init', path]).code).toBe(0);
    expect(cli(['exec', path, `INSERT INTO t VALUES (1, 'a')`]).code).toBe(0);
    return path;
  }

  it('err: a symlinked head is refused (JOURNAL_FILE_UNEXPECTED) and its target is never written', () => {
    const path = tracked();
    const victim = join(dirname(path), 'victim.conf');
    writeFileSync(victim, 'precious configuration\n');
    unlinkSync(join(`${path}.changes`, 'head'));
    symlinkSync(victim, join(`${path}.changes`, 'head'));
    for (const args of [['exec', path, `INSERT INTO t VALUES (2, 'b')`], ['log', path], ['status', path], ['init', path]]) {
      const result = cli([...args, '--json']);
      expect(result.code, args[0]).toBe(1);
      expect(jsonError(result)).toMatchObject({ code: 'JOURNAL_FILE_UNEXPECTED', details: { path: join(`${path}.changes`, 'head'), found: 'symlink' } });
    }
    expect(readFileSync(victim, 'utf8')).toBe('precious configuration\n');
  });

  it('err: a symlinked segment, a FIFO or a directory in place of a journal file is refused with the code', () => {
    const path = tracked();
    const segment = join(`${path}.changes`, '00000000000000000001.seg');
    const moved = join(dirname(path), 'elsewhere.seg');
    renameSync(segment, moved);
    symlinkSync(moved, segment);
    const linked = cli(['exec', path, `INSERT INTO t VALUES (2, 'b')`, '--json']);
    expect(linked.code).toBe(1);
    expect(jsonError(linked)).toMatchObject({ code: 'JOURNAL_FILE_UNEXPECTED', details: { found: 'symlink' } });
    unlinkSync(segment);
    renameSync(moved, segment);
    expect(cli(['verify', path]).code).toBe(0);

    const head = join(`${path}.changes`, 'head');
    unlinkSync(head);
    spawnSync('mkfifo', [head]);
    const fifo = cli(['log', path, '--json'], { timeout: 20_000 });
    expect(fifo.code).toBe(1);
    expect(jsonError(fifo)).toMatchObject({ code: 'JOURNAL_FILE_UNEXPECTED', details: { found: 'other' } });
    unlinkSync(head);
    spawnSync('mkdir', [head]);
    expect(jsonError(cli(['exec', path, `INSERT INTO t VALUES (3, 'c')`, '--json']))).toMatchObject({ code: 'JOURNAL_FILE_UNEXPECTED', details: { found: 'directory' } });
  });
});
