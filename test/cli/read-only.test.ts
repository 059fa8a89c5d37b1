/**
 * Reading commands never write (issue 9 §1.2, issue 8 §2): status, log, show, verify, export, history,
 * blame, diff, retention (showing) and replicate's source side leave the database, its -wal and the journal byte-identical and
 * create no file beside the database (no empty -wal/-shm pair on a WAL database nobody has open), keep
 * the journal mode as found, work next to another process holding a WAL database open, and need read
 * access only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';
import { cli, database, jsonError, MAIN } from './run-cli.js';

const READING_COMMANDS = [['status'], ['log'], ['log', '--oneline'], ['show', '1'], ['verify'], ['verify', '--replay']];
/**
 * More reading commands, run where nobody holds the database open. history and blame run with --scan: without
 * it they keep their audit index (a cache) under the journal's `index/` directory by design.
 */
const MORE_READING_COMMANDS = [
  ['export', '--since', '0'], ['export', '--since', '0', '--format', 'sql'], ['history', 't', '2', '--scan'],
  ['blame', 't', '--scan'], ['diff', '0'], ['diff', '1', '2', '--replay'], ['retention'],
];

/** Every file that holds the database's or the journal's bytes (not -shm: SQLite's shared-memory index). */
function fileBytes(path: string): Map<string, string> {
  const files = new Map<string, string>();
  const add = (file: string) => files.set(file, createHash('sha256').update(readFileSync(file)).digest('hex'));
  for (const suffix of ['', '-wal', '-journal']) if (existsSync(path + suffix)) add(path + suffix);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else add(file);
    }
  };
  walk(`${path}.changes`);
  return files;
}

/** The bytes after a reading command are the bytes before it. */
function expectUnchanged(path: string, before: Map<string, string>, label: string): void {
  expect(Object.fromEntries(fileBytes(path)), label).toEqual(Object.fromEntries(before));
}

/** No file appeared or vanished beside the database (-shm included). */
function expectSameFiles(path: string, before: string[], label: string): void {
  expect(readdirSync(dirname(path)).sort(), label).toEqual(before);
}

async function trackedWithEntries(journalMode?: 'wal'): Promise<string> {
  const path = database();
  const trail = await openTrail(path, journalMode === undefined ? {} : { journalMode });
  await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'ada'), (2, 'bob')`), { message: 'seed' });
  await trail.write((db) => db.exec(`UPDATE t SET name = 'Bob' WHERE id = 2`));
  await trail.close();
  return path;
}

function journalModeOf(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return String(db.prepare('PRAGMA journal_mode').get()?.journal_mode);
  } finally {
    db.close();
  }
}

describe('reading commands leave every byte as it was', () => {
  for (const mode of ['delete', 'wal'] as const) {
    it(`ok: ${mode}: a segment lacking committed frames (a writer killed after COMMIT, mid-append) is read from the outbox, unchanged`, async () => {
      const path = await trackedWithEntries(mode === 'wal' ? 'wal' : undefined);
      const segment = join(`${path}.changes`, '00000000000000000001.seg');
      truncateSync(segment, statSync(segment).size - 9);
      const before = fileBytes(path);
      const outputs = new Map<string, string>();
      for (const command of READING_COMMANDS) {
        const result = cli([command[0]!, path, ...command.slice(1), '--json']);
        expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(0);
        expectUnchanged(path, before, command.join(' '));
        outputs.set(command.join(' '), result.stdout);
      }
      const log = outputs.get('log')!.trim().split('\n').map((line) => JSON.parse(line) as { seq: number });
      expect(log.map((entry) => entry.seq).sort()).toEqual([1, 2]);
      expect(JSON.parse(outputs.get('verify --replay')!)).toMatchObject({ headSeq: 2, entries: 2, replayed: true });
    });
  }

  it('ok: rollback-journal database', async () => {
    const path = await trackedWithEntries();
    const before = fileBytes(path);
    const files = readdirSync(dirname(path)).sort();
    for (const command of [...READING_COMMANDS, ...MORE_READING_COMMANDS]) {
      const result = cli([command[0]!, path, ...command.slice(1)]);
      expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(0);
      expectUnchanged(path, before, command.join(' '));
      expectSameFiles(path, files, command.join(' '));
    }
    expect(journalModeOf(path)).toBe('delete');
  });

  it('ok: WAL database nobody has open: stays WAL, unchanged, no -wal/-shm left behind', async () => {
    const path = await trackedWithEntries('wal');
    const before = fileBytes(path);
    const files = readdirSync(dirname(path)).sort();
    expect(files).toEqual(['app.db', 'app.db.changes']);
    for (const command of [...READING_COMMANDS, ...MORE_READING_COMMANDS]) {
      const result = cli([command[0]!, path, ...command.slice(1), '--json']);
      expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(0);
      expectUnchanged(path, before, command.join(' '));
      expectSameFiles(path, files, command.join(' '));
    }
    // replicate reads the source only: the replica is written elsewhere.
    const replica = join(tempDir('ct-replica-'), 'replica.db');
    const replicate = cli(['replicate', path, replica, '--json']);
    expect(replicate.code, replicate.stderr).toBe(0);
    expectUnchanged(path, before, 'replicate');
    expectSameFiles(path, files, 'replicate');
    expect(JSON.parse(cli(['status', path, '--json']).stdout).journalMode).toBe('wal');
    expect(journalModeOf(path)).toBe('wal');
  });

  it('ok: next to another process holding the WAL database open (uncheckpointed frames in -wal)', async () => {
    const path = database();
    const trail = await openTrail(path, { journalMode: 'wal' });
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'ada')`));
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'bob')`));
    // Another process keeps the database open (and reads it), so nobody checkpoints the -wal on close.
    const holder = spawn(process.execPath, ['-e', `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(${JSON.stringify(path)});
      db.prepare('SELECT count(*) FROM t').get();
      process.stdout.write('ready');
      process.stdin.on('data', () => {});
      process.stdin.on('end', () => db.close());`], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    await trail.close();
    try {
      expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
      const before = fileBytes(path);
      for (const command of READING_COMMANDS) {
        const result = cli([command[0]!, path, ...command.slice(1)]);
        expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(0);
        expectUnchanged(path, before, command.join(' '));
      }
      // Writing commands work beside it too, and keep WAL.
      const exec = cli(['exec', path, `INSERT INTO t VALUES (3, 'cy')`, '--json']);
      expect(exec.code, exec.stderr).toBe(0);
      expect(JSON.parse(exec.stdout).seq).toBe(3);
      expect(journalModeOf(path)).toBe('wal');
    } finally {
      holder.stdin.end();
      await new Promise((resolve) => holder.on('exit', resolve));
    }
  });

  it('err: a crashed writer\'s hot journal is RECOVERY_NEEDED, and left for a writer to roll back', async () => {
    const path = await trackedWithEntries();
    // A raw writer dies mid-transaction after spilling pages: a hot rollback journal remains.
    spawnSync(process.execPath, ['-e', `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(${JSON.stringify(path)});
      db.exec('PRAGMA cache_size = 1; BEGIN');
      for (let i = 0; i < 3000; i++) db.prepare('INSERT INTO t (name) VALUES (?)').run('x'.repeat(400));
      process.kill(process.pid, 'SIGKILL');`]);
    expect(existsSync(`${path}-journal`)).toBe(true);
    const before = fileBytes(path);
    for (const command of [['status'], ['log'], ['verify']]) {
      const result = cli([command[0]!, path, '--json']);
      expect(result.code, command[0]).toBe(1);
      expect(jsonError(result)).toMatchObject({ code: 'RECOVERY_NEEDED', details: { path } });
      expectUnchanged(path, before, command[0]!);
    }
    // Any write rolls it back; then reading works again.
    expect(cli(['exec', path, `UPDATE t SET name = 'ok' WHERE id = 1`]).code).toBe(0);
    expect(cli(['verify', path, '--replay']).code).toBe(0);
  });
});

describe('journal mode is the database\'s', () => {
  it('ok: init and exec keep WAL as found; only --journal-mode changes it, and init says so', () => {
    const path = database();
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = wal');
    db.close();
    expect(cli(['init', path]).code).toBe(0);
    expect(journalModeOf(path)).toBe('wal');
    expect(cli(['exec', path, `INSERT INTO t VALUES (1, 'ada')`]).code).toBe(0);
    expect(journalModeOf(path)).toBe('wal');
    const changed = cli(['init', path, '--journal-mode', 'delete']);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('journal mode changed: wal -> delete');
    expect(journalModeOf(path)).toBe('delete');
    expect(JSON.parse(cli(['init', path, '--journal-mode', 'wal', '--json']).stdout)).toMatchObject({ journalMode: 'wal', journalModeChanged: { from: 'delete', to: 'wal' } });
    expect(cli(['init', path, '--journal-mode', 'memory']).code).toBe(2);
  });
});

describe('read access is enough', () => {
  it('ok: log, show, status, verify and retention as a user who can only read the files', async () => {
    const path = await trackedWithEntries();
    const dir = dirname(path);
    const readOnly = (file: string): void => {
      const stat = statSync(file);
      if (stat.isDirectory()) {
        chmodSync(file, 0o555);
        for (const name of readdirSync(file)) readOnly(join(file, name));
      } else chmodSync(file, 0o444);
    };
    const before = fileBytes(path);
    readOnly(dir);
    // As root, permissions are not enforced: run the CLI as nobody instead.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    try {
      for (const command of [['status'], ['log'], ['show', '2'], ['verify'], ['verify', '--replay'], ['retention']]) {
        const result = spawnSync(process.execPath, [MAIN, command[0]!, path, ...command.slice(1)], { encoding: 'utf8', ...asUser, env: { ...process.env, NO_COLOR: '1' } });
        expect(result.error, `${command.join(' ')}: could not run ${process.execPath} as uid 65534 (is its directory searchable?)`).toBeUndefined();
        expect(result.status, `${command.join(' ')}: ${result.stderr}`).toBe(0);
      }
      const write = spawnSync(process.execPath, [MAIN, 'exec', path, `INSERT INTO t VALUES (9, 'no')`, '--json'], { encoding: 'utf8', ...asUser });
      expect(write.status).toBe(1);
    } finally {
      chmodSync(dir, 0o755);
      chmodSync(`${path}.changes`, 0o755);
    }
    expectUnchanged(path, before, 'read-only user');
  });
});

describe('verify --replay scratch directory', () => {
  it('ok: --scratch-dir is used and emptied; SIGINT and SIGTERM stop a replay and remove it', async () => {
    const path = database('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, pad BLOB)');
    const trail = await openTrail(path);
    await trail.write((db) => db.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000) INSERT INTO t (name, pad) SELECT 'row' || i, randomblob(64) FROM n`).run());
    await trail.close();
    const scratch = join(dirname(path), 'scratch');
    spawnSync('mkdir', [scratch]);
    const ok = cli(['verify', path, '--replay', '--scratch-dir', scratch]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(scratch)).toEqual([]);
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const child = spawn(process.execPath, [MAIN, 'verify', path, '--replay', '--scratch-dir', scratch], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
      const started = Date.now();
      while (readdirSync(scratch).length === 0 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 5));
      expect(readdirSync(scratch), 'the replay started').toHaveLength(1);
      child.kill(signal);
      expect(await exited).toBe(code);
      expect(readdirSync(scratch), signal).toEqual([]);
    }
  });
});

describe('one database path, one way forward', () => {
  it('ok: a symlinked database path is the same database for every command', () => {
    const path = database();
    const link = join(dirname(path), 'link.db');
    spawnSync('ln', ['-s', path, link]);
    const init = cli(['init', link, '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ database: path, journalDir: `${path}.changes` });
    expect(cli(['exec', link, `INSERT INTO t VALUES (1, 'ada')`]).code).toBe(0);
    for (const command of ['log', 'status', 'verify']) expect(cli([command, link]).code, command).toBe(0);
    expect(JSON.parse(cli(['status', link, '--json']).stdout)).toMatchObject({ database: path, headSeq: 1 });
    expect(existsSync(`${link}.changes`)).toBe(false);
  });

  it('err: a deleted journal gets the same advice from status and init, and init --new-history starts over', () => {
    const path = database();
    cli(['init', path]);
    cli(['exec', path, `INSERT INTO t VALUES (1, 'ada')`]);
    spawnSync('rm', ['-rf', `${path}.changes`]);
    const status = cli(['status', path, '--json']);
    const init = cli(['init', path, '--json']);
    for (const result of [status, init]) {
      expect(result.code).toBe(1);
      expect(jsonError(result)).toMatchObject({ code: 'JOURNAL_MISMATCH', details: { journalJournalId: null } });
      expect(jsonError(result).hint).toContain(`changetrail init ${path} --new-history`);
    }
    const fresh = cli(['init', path, '--new-history']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toContain('started a new history');
    expect(JSON.parse(cli(['status', path, '--json']).stdout)).toMatchObject({ headSeq: 0 });
    expect(cli(['verify', path, '--replay']).code).toBe(0);
    // With a journal still present, --new-history refuses (it never deletes one).
    expect(cli(['init', path, '--new-history']).code).toBe(2);
  });

  it('err: messages name CLI commands, not API calls', () => {
    const path = database();
    cli(['init', path]);
    const foreign = new DatabaseSync(path);
    foreign.exec(`INSERT INTO t VALUES (5, 'outside')`);
    foreign.close();
    for (const result of [cli(['exec', path, `INSERT INTO t VALUES (6, 'x')`]), cli(['verify', path, '--replay']), cli(['exec', path, 'CREATE TABLE u(x)'])]) {
      expect(result.code).toBe(1);
      expect(result.stderr).not.toMatch(/\btrail\.\w+/);
      expect(result.stderr).toMatch(/changetrail (resync|migrate) /);
    }
  });

  it('err: init of a directory, of ".", or of a file that is not a database says so and creates nothing', () => {
    const path = database();
    const dir = dirname(path);
    const text = join(dir, 'notes.txt');
    spawnSync('sh', ['-c', `echo 'not a database' > "${text}"; mkdir "${dir}/sub"`]);
    for (const [target, cwd, reason] of [[join(dir, 'sub'), dir, 'directory'], ['.', join(dir, 'sub'), 'directory'], [text, dir, 'not a SQLite database']] as const) {
      const result = cli(['init', target, '--json'], { cwd });
      expect(result.code, target).toBe(1);
      expect(jsonError(result)).toMatchObject({ code: 'NOT_A_DATABASE', details: { reason } });
    }
    expect(readdirSync(dir).sort()).toEqual(['app.db', 'notes.txt', 'sub']);
    expect(readdirSync(join(dir, 'sub'))).toEqual([]);
    const missing = cli(['status', join(dir, 'nope.db'), '--json']);
    expect(missing.code).toBe(1);
    expect(jsonError(missing)).toMatchObject({ code: 'NOT_A_DATABASE', details: { reason: 'missing' } });
  });
});
