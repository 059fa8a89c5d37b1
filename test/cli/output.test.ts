/** The CLI as users meet it: help, version, human output, escaping, colour, pipes, SQL input (issue 9 §1, §2.2). */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { ChangetrailError, ERROR_CODES } from '../../src/errors.js';
import { hintFor } from '../../src/cli/report.js';
import { tempDir } from '../helpers/db.js';
import { cli, database, jsonError, MAIN } from './run-cli.js';

/** Bytes that let text move the cursor, erase, ring or retitle a terminal. */
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function tracked(sql?: string): string {
  const path = database(sql);
  expect(cli(['init', path]).code).toBe(0);
  return path;
}

describe('help and version', () => {
  it('ok: --help lists every command; <command> --help and help <command> show its options', () => {
    const overview = cli(['--help']);
    expect(overview.code).toBe(0);
    for (const name of ['init', 'exec', 'migrate', 'undo', 'resync', 'log', 'show', 'status', 'verify', 'unlock']) expect(overview.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    const log = cli(['log', '--help']);
    expect(log.code).toBe(0);
    expect(log.stdout).toContain('usage: changetrail log <db>');
    expect(log.stdout).toContain('--oneline');
    expect(cli(['help', 'exec']).stdout).toContain('--file <file.sql>');
    const unknown = cli(['help', 'nosuch', '--json']);
    expect(unknown.code).toBe(2);
    expect(jsonError(unknown)).toMatchObject({ code: 'CLI_USAGE' });
    expect(cli([]).code).toBe(2);
  });

  it('ok: --version prints the package version', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    expect(cli(['--version']).stdout.trim()).toBe(`changetrail ${version}`);
    expect(JSON.parse(cli(['--version', '--json']).stdout)).toEqual({ version });
  });

  it('err: an unknown command or option is CLI_USAGE with exit 2', () => {
    const unknown = cli(['frobnicate', '--json']);
    expect(unknown.code).toBe(2);
    expect(jsonError(unknown).code).toBe('CLI_USAGE');
    const option = cli(['log', 'x.db', '--bogus']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('changetrail log --help');
  });
});

describe('human output', () => {
  it('ok: log shows meta, "undoes #n", hash first; no zero counts; --oneline; verify says "1 entry"', async () => {
    const path = tracked();
    const trail = await openTrail(path);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'ada')`), { message: 'seed', meta: { ticket: 'OPS-7' } });
    await trail.close();
    expect(cli(['verify', path]).stdout).toMatch(/^ok: 1 entry verified/);
    expect(cli(['undo', path, '1']).code).toBe(0);
    const log = cli(['log', path]);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toMatch(/^entry 1 [0-9a-f]{12}$/m);
    expect(log.stdout).toContain('Meta:    {"ticket":"OPS-7"}');
    expect(log.stdout).toMatch(/^entry 2 [0-9a-f]{12}  undoes #1$/m);
    expect(log.stdout).toContain('Changes: t +1');
    expect(log.stdout).toContain('Changes: t -1');
    expect(log.stdout).not.toMatch(/[+~-]0\b/);
    const oneline = cli(['log', path, '--oneline']).stdout.trim().split('\n');
    expect(oneline).toHaveLength(2);
    expect(oneline[0]).toMatch(/^[0-9a-f]{12} #1 seed {2}\(t \+1\)$/);
    expect(oneline[1]).toMatch(/^[0-9a-f]{12} #2 undo #1 {2}\(t -1\) undoes #1$/);
    expect(cli(['verify', path]).stdout).toMatch(/^ok: 2 entries verified/);
  });

  it('ok: BLOBs print as a shortened x\'…\' literal, and as {"$blob": hex} in JSON', () => {
    const path = tracked('CREATE TABLE f(id INTEGER PRIMARY KEY, data BLOB)');
    const png = '89504e470d0a1a0a0000000d49484452000000100000001008060000001ff3ff61';
    expect(cli(['exec', path, `INSERT INTO f VALUES (1, x'${png}')`]).code).toBe(0);
    const human = cli(['show', path, '1']).stdout;
    expect(human).toContain(`insert f id=1: data=x'${png.slice(0, 32)}…' (33 bytes)`);
    expect(human).not.toContain('"0":137');
    const json = JSON.parse(cli(['show', path, '1', '--json']).stdout);
    expect(json.changes[0].after).toEqual({ id: 1, data: { $blob: png } });
  });

  it('err: show of entry 0 is ENTRY_NOT_FOUND, not a validator message', () => {
    const path = tracked();
    for (const seq of ['0', '5']) {
      const result = cli(['show', path, seq, '--json']);
      expect(result.code).toBe(1);
      expect(jsonError(result)).toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: Number(seq), headSeq: 0 } });
      expect(result.stderr).not.toContain('invalid option');
    }
    expect(cli(['show', path, '-1']).code).toBe(2);
  });

  it('ok: colour only when forced or on a TTY, and never with NO_COLOR', () => {
    const path = tracked();
    cli(['exec', path, `INSERT INTO t VALUES (1, 'ada')`]);
    expect(cli(['log', path]).stdout).not.toContain('\u001b[');
    expect(cli(['log', path], { env: { FORCE_COLOR: '1' } }).stdout).toContain('\u001b[33m');
    expect(cli(['log', path], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } }).stdout).not.toContain('\u001b[');
    expect(cli(['log', path, '--json'], { env: { FORCE_COLOR: '1' } }).stdout).not.toContain('\u001b[');
  });

  const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
  it.skipIf(SCRIPT === undefined)('ok: colour on a real terminal (a pty), none there with NO_COLOR', () => {
    const path = tracked();
    cli(['exec', path, `INSERT INTO t VALUES (1, 'ada')`]);
    const onTty = (env: Record<string, string | undefined>) => spawnSync(SCRIPT!, ['-qec', `"${process.execPath}" "${MAIN}" log "${path}"`, '/dev/null'], {
      encoding: 'utf8', env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm', ...env },
    }).stdout;
    expect(onTty({})).toContain('\u001b[33mentry 1 ');
    expect(onTty({ NO_COLOR: '1' })).not.toContain('\u001b[');
  });

  it.skipIf(SCRIPT === undefined)('err: a binary changeset is not written to a terminal (it would carry raw table names and bytes)', () => {
    const path = tracked('CREATE TABLE "t\u001b]0;pwned\u0007"(id INTEGER PRIMARY KEY)');
    expect(cli(['exec', path, 'INSERT INTO "t\u001b]0;pwned\u0007" VALUES (1)']).code).toBe(0);
    for (const format of ['changeset', 'patchset']) {
      const onTty = spawnSync(SCRIPT!, ['-qec', `"${process.execPath}" "${MAIN}" export "${path}" --since 0 --format ${format}`, '/dev/null'], { encoding: 'utf8' });
      expect(onTty.status, format).toBe(2);
      expect(onTty.stdout, format).toMatch(/CLI_USAGE/);
      expect(onTty.stdout, format).not.toMatch(/\u0007/);
      // Redirected, the bytes go out as they are.
      expect(cli(['export', path, '--since', '0', '--format', format]).code, format).toBe(0);
    }
  });
});

describe('terminal escape injection (§2.2)', () => {
  it('err: actor, message, meta, table names, values and SQL cannot move the cursor or retitle the terminal', async () => {
    const evilTable = 'acct\u001b[2K\rusers';
    const path = tracked(`CREATE TABLE "${evilTable}"(id INTEGER PRIMARY KEY, note TEXT)`);
    const trail = await openTrail(path);
    // A fake previous line: carriage return, cursor up, erase line, then an OSC that retitles the terminal.
    const forged = '\r\u001b[1A\u001b[2K#0 write 2020-01-01 admin  routine backup\u001b]0;pwned\u0007';
    await trail.write((db) => db.prepare(`INSERT INTO "${evilTable}" VALUES (1, ?)`).run(`x\u001b[31my\u009b2J`), {
      actor: `mallory${forged}`, message: `fix${forged}\u202e`, meta: { k: `v${forged}` },
    });
    await trail.migrate(`CREATE TABLE n(id INTEGER PRIMARY KEY); -- \u001b]0;pwned\u0007\n`, { message: 'ok' });
    await trail.close();
    for (const args of [['log', path], ['log', path, '--oneline'], ['show', path, '1'], ['show', path, '2'], ['status', path]]) {
      const result = cli(args);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout, args.join(' ')).not.toMatch(TERMINAL_CONTROL);
      expect(result.stdout).not.toContain('\u202e');
    }
    const log = cli(['log', path]).stdout;
    expect(log).toContain('mallory\\r\\e[1A\\e[2K#0 write');
    expect(log).toContain('\\e]0;pwned\\x07');
    expect(cli(['show', path, '1']).stdout).toContain(`acct\\e[2K\\rusers`);
    // JSON output carries the exact text (escaped by JSON itself).
    expect(JSON.parse(cli(['log', path, '--json']).stdout.split('\n')[0]!).actor).toBe(`mallory${forged}`);
  });

  it('err: an error message naming hostile input is escaped too', () => {
    const result = cli(['frob\u001b]0;x\u0007nicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(TERMINAL_CONTROL);
  });
});

describe('pipes and SQL input', () => {
  it('ok: `log | head -3` stops quietly (EPIPE)', async () => {
    const path = tracked();
    const trail = await openTrail(path);
    const message = 'm'.repeat(2000);
    for (let i = 0; i < 120; i++) await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, 'x'), { message });
    await trail.close();
    for (const flags of ['', '--json', '--oneline']) {
      const result = spawnSync('sh', ['-c', `"${process.execPath}" "${MAIN}" log "${path}" ${flags} | head -3; echo "exit=$?"`], { encoding: 'utf8' });
      expect(result.stderr, flags).toBe('');
      expect(result.stdout.trim().split('\n')).toHaveLength(4);
    }
  });

  it('ok: `export | head` stops quietly (EPIPE), in every streamed format', async () => {
    const path = tracked();
    const trail = await openTrail(path);
    const name = 'n'.repeat(2000);
    for (let i = 0; i < 120; i++) await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, name));
    await trail.close();
    for (const format of ['ndjson', 'debezium', 'sql']) {
      // 240 KB of output against a 64 KiB pipe: the reader is gone long before the export ends.
      const script = `{ "${process.execPath}" "${MAIN}" export "${path}" --since 0 --format ${format} --each; echo "exit=$?" >&2; } | head -c 100 >/dev/null`;
      const result = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
      expect(result.stderr, format).not.toMatch(/internal error|EPIPE/);
      expect(result.stderr, format).toMatch(/exit=0/);
    }
  });

  it('ok: exec reads SQL from stdin (-) or --file; exactly one source', () => {
    const path = tracked();
    const stdin = cli(['exec', path, '-', '--json'], { input: `INSERT INTO t VALUES (1, 'from stdin');\nINSERT INTO t VALUES (2, 'two');\n` });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(JSON.parse(stdin.stdout)).toMatchObject({ seq: 1, tables: [{ table: 't', inserts: 2 }] });
    const file = join(tempDir('ct-sql-'), 'fix.sql');
    writeFileSync(file, `UPDATE t SET name = 'file' WHERE id = 1;`);
    expect(JSON.parse(cli(['exec', path, '--file', file, '--json']).stdout)).toMatchObject({ seq: 2, tables: [{ table: 't', updates: 1 }] });
    expect(JSON.parse(cli(['exec', path, '-f', '-', '--json'], { input: 'DELETE FROM t WHERE id = 2' }).stdout)).toMatchObject({ seq: 3 });
    expect(cli(['exec', path]).code).toBe(2);
    expect(cli(['exec', path, 'SELECT 1', '--file', file]).code).toBe(2);
    expect(cli(['exec', path, '-'], { input: '  \n' }).code).toBe(2);
    expect(existsSync(`${path}.changes`)).toBe(true);
  });
});

describe('old Node', () => {
  const oldNode = ['/usr/bin/node', '/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p) && spawnSync(p, ['-e', 'process.exit(Number(process.versions.node.split(".")[0]) < 24 ? 0 : 1)']).status === 0);

  it.skipIf(oldNode === undefined)('err: Node < 24.12 gets NODE_UNSUPPORTED and exit 78, not a raw module error', () => {
    const human = spawnSync(oldNode!, [MAIN, 'status', 'app.db'], { encoding: 'utf8' });
    expect(human.status).toBe(78);
    expect(human.stderr).toMatch(/^changetrail: NODE_UNSUPPORTED: changetrail needs Node 24\.12 or newer/);
    expect(human.stderr).not.toContain('ERR_UNKNOWN_BUILTIN_MODULE');
    const json = spawnSync(oldNode!, [MAIN, 'log', 'app.db', '--json'], { encoding: 'utf8' });
    expect(json.status).toBe(78);
    expect(JSON.parse(json.stderr).error).toMatchObject({ code: 'NODE_UNSUPPORTED', details: { required: '>=24.12' } });
  });
});

describe('one name for the row key in every JSON output', () => {
  it('ok: export, show, diff, history and undo --dry-run all call it `key` ({column: value}, as export does)', () => {
    const path = tracked('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
    expect(cli(['exec', path, "INSERT INTO t VALUES (7, 'ada')"]).code).toBe(0);
    expect(cli(['exec', path, "UPDATE t SET name = 'Ada' WHERE id = 7"]).code).toBe(0);
    const rows = (args: string[]): Record<string, unknown>[] => {
      const result = cli([...args, '--json']);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      return result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    };
    const changes = [
      ...rows(['export', path, '--since', '0']),
      ...(rows(['show', path, '2'])[0]!.changes as Record<string, unknown>[]),
      ...rows(['diff', path, '0']),
      ...rows(['history', path, 't', '7']),
      ...(rows(['undo', path, '2', '--dry-run'])[0]!.restores as Record<string, unknown>[]),
    ];
    expect(changes).toHaveLength(7);
    for (const change of changes) {
      expect(change).toHaveProperty('key', { id: 7 });
      expect(change).not.toHaveProperty('pk');
    }
  });
});

describe('library messages name CLI commands', () => {
  it('ok: FOREIGN_WRITE_DETECTED names `changetrail resync <db>` and `--if-changed`, with no API call left over', () => {
    const path = tracked();
    const foreign = new DatabaseSync(path);
    foreign.exec("INSERT INTO t VALUES (1, 'outside')");
    foreign.close();
    const refused = cli(['exec', path, "INSERT INTO t VALUES (2, 'inside')"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^changetrail: FOREIGN_WRITE_DETECTED: /);
    expect(refused.stderr).toContain(`\`changetrail resync ${path} --if-changed\``);
    expect(refused.stderr).not.toMatch(/trail\.\w+\(|\(\{/);
  });

  it('ok: a command the message names is given the database (`changetrail recover <path>`, not <db>)', () => {
    const path = tracked();
    const older = `${path}.older`;
    copyFileSync(path, older);
    expect(cli(['exec', path, "INSERT INTO t VALUES (1, 'a')"]).code).toBe(0);
    copyFileSync(older, path);
    const refused = cli(['log', path]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^changetrail: DATABASE_BEHIND_JOURNAL: /);
    expect(refused.stderr).toContain(`\`changetrail recover ${path}\``);
    expect(refused.stderr).not.toContain('<db>');
  });
});

describe('every refusal carries a hint', () => {
  it('ok: a SQL error, an existing output, a non-replica target and a resync in an export range each print a hint line', () => {
    const path = tracked();
    expect(cli(['exec', path, "INSERT INTO t VALUES (1, 'a')"]).code).toBe(0);
    const existing = join(dirname(path), 'exists.db');
    writeFileSync(existing, 'keep me');
    const foreign = new DatabaseSync(path);
    foreign.exec("UPDATE t SET name = 'b'");
    foreign.close();
    expect(cli(['resync', path]).code).toBe(0);
    const refusals = [
      ['exec', path, 'INSERT INTO missing VALUES (1)'],
      ['restore', path, '--at', '1', '-o', existing],
      ['replicate', path, existing],
      ['export', path, '--since', '0'],
    ];
    for (const args of refusals) {
      const human = cli(args);
      expect(human.code, args.join(' ')).toBe(1);
      expect(human.stderr, args.join(' ')).toMatch(/^changetrail: [A-Z_]+: .*\nhint: \S/m);
    }
    // With --json the same hint is a field (one path, reportError, prints both forms). export --json reports
    // the range it resolved on stderr first: the error is the last line.
    const json = cli([...refusals.at(-1)!, '--json']).stderr.trim().split('\n').at(-1)!;
    expect((JSON.parse(json) as { error: { hint?: unknown } }).error.hint).toEqual(expect.any(String));
  });

  it('ok: hintFor has a hint for every code but CLI_USAGE (whose message says what to do)', () => {
    for (const code of ERROR_CODES) {
      const hint = hintFor(new ChangetrailError(code, 'x', {} as never), 'app.db');
      if (code === 'CLI_USAGE') expect(hint).toBeNull();
      else expect(hint, code).toEqual(expect.stringMatching(/\S/));
    }
  });
});
