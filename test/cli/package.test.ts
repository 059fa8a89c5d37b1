/**
 * The CLI as installed (issue 9 §1.1): `npm pack`, install the tarball into a fresh directory, run
 * `node_modules/.bin/changetrail` (npm's symlink to dist/cli/main.js). One pack per run of this file.
 * dist/ is built by `npm test` before vitest runs, so the pack skips the prepack build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';

const ROOT = new URL('../..', import.meta.url).pathname;
let bin = '';
let work = '';

/** Runs the installed bin link with this Node first on PATH (its shebang is `#!/usr/bin/env node`). */
function installed(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, NO_COLOR: '1' };
  const result = spawnSync(bin, args, { encoding: 'utf8', cwd: work, env, ...(input === undefined ? {} : { input }) });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  const packDir = tempDir('ct-pack-');
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: ROOT, encoding: 'utf8' })) as { filename: string }[];
  work = tempDir('ct-installed-');
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'uses-changetrail', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'error', join(packDir, packed!.filename)], { cwd: work, stdio: 'pipe' });
  bin = join(work, 'node_modules', '.bin', 'changetrail');
}, 180_000);

describe('installed package', () => {
  it('ok: the bin is a symlink and --help / --version run through it', () => {
    expect(lstatSync(bin).isSymbolicLink()).toBe(true);
    const help = installed(['--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('usage: changetrail <command>');
    expect(installed(['--version']).stdout).toMatch(/^changetrail \d+\.\d+\.\d+/);
  });

  it('err: a failure prints its code and exits non-zero (a CI step cannot pass by doing nothing)', () => {
    const result = installed(['status', join(work, 'nonexistent.db'), '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr).error.code).toBe('NOT_A_DATABASE');
    const verify = installed(['verify', join(work, 'nonexistent.db')]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/^changetrail: NOT_A_DATABASE: /);
  });

  it('err: a file that is not a SQLite database is NOT_A_DATABASE for every command, journal beside it or not', () => {
    const junk = join(work, 'notes.db');
    writeFileSync(junk, 'not a database\n');
    const commands = [['status'], ['log'], ['verify'], ['show', '1'], ['export', '--since', '0'], ['backup', 'copy.db'], ['history', 't', '1'], ['exec', 'SELECT 1']];
    for (const journal of [false, true]) {
      if (journal) mkdirSync(`${junk}.changes`);
      for (const [command, ...rest] of commands) {
        const result = installed([command!, junk, ...rest, '--json']);
        expect(result.code, `${command} ${result.stderr}`).toBe(1);
        expect(JSON.parse(result.stderr).error, command).toMatchObject({ code: 'NOT_A_DATABASE', details: { reason: 'not a SQLite database' } });
      }
    }
    expect(existsSync(join(work, 'copy.db'))).toBe(false);
  });

  it('ok: the README quickstart on a new file: init, migrate from stdin, exec, log --json, verify', () => {
    const db = join(work, 'app.db');
    expect(installed(['init', 'app.db']).code).toBe(0);
    expect(existsSync(`${db}.changes`)).toBe(true);
    const migrated = installed(['migrate', 'app.db', '-', '-m', 'accounts'], 'CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);\n');
    expect(migrated.code, migrated.stderr).toBe(0);
    const exec = installed(['exec', 'app.db', 'INSERT INTO accounts VALUES (1, 100), (2, 0)', '-m', 'open two accounts']);
    expect(exec.code, exec.stderr).toBe(0);
    const withdraw = installed(['exec', 'app.db', 'UPDATE accounts SET balance = balance - 30 WHERE id = 1', '-m', 'withdraw 30']);
    expect(withdraw.code, withdraw.stderr).toBe(0);
    const log = installed(['log', 'app.db', '--json']);
    expect(log.code, log.stderr).toBe(0);
    const lines = log.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.seq, l.kind, l.message])).toEqual([[1, 'schema', 'accounts'], [2, 'write', 'open two accounts'], [3, 'write', 'withdraw 30']]);
    expect(installed(['verify', 'app.db', '--replay']).stdout).toMatch(/^ok: 3 entries verified/);
    const balance = new DatabaseSync(db, { readOnly: true });
    expect(balance.prepare('SELECT balance FROM accounts WHERE id = 1').get()).toEqual({ balance: 70 });
    balance.close();
  });
});
