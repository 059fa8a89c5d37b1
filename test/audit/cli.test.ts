/** The audit commands, run as real processes against the built CLI (dist/cli/main.js). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function ndjson(text: string): Record<string, unknown>[] {
  return text.trim().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function cliDatabase(): string {
  const path = join(tempDir('ct-audit-cli-'), 'app.db');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
    CREATE TABLE c(t_id INTEGER REFERENCES t(id) ON DELETE CASCADE, k TEXT, PRIMARY KEY (t_id, k));`);
  db.close();
  expect(cli('init', path).code).toBe(0);
  const run = (sql: string, actor: string, message: string) => expect(cli('exec', path, sql, '--actor', actor, '-m', message).code).toBe(0);
  run(`INSERT INTO t VALUES (1, 'ada', 1), (2, 'bob', 2)`, 'alice', 'seed');
  run(`INSERT INTO c VALUES (1, 'x'), (2, 'y')`, 'bob', 'children');
  run(`UPDATE t SET name = 'Ada', n = 10 WHERE id = 1`, 'carol', 'fix name');
  run(`DELETE FROM t WHERE id = 2`, 'alice', 'drop bob');
  return path;
}

describe('changetrail history / blame (CLI)', () => {
  it('ok: history --json is NDJSON, oldest first, with before → after and indirect cascade deletes', () => {
    const path = cliDatabase();
    const history = cli('history', path, 't', '1', '--json');
    expect(history.code, history.stderr).toBe(0);
    const steps = ndjson(history.stdout);
    expect(steps.map((s) => [s.seq, s.op, s.actor])).toEqual([[1, 'insert', 'alice'], [3, 'update', 'carol']]);
    expect(steps[1]).toMatchObject({ message: 'fix name', before: { name: 'ada', n: 1 }, after: { name: 'Ada', n: 10 }, indirect: false });
    const child = ndjson(cli('history', path, 'c', '2', 'y', '--json').stdout);
    expect(child.map((s) => [s.seq, s.op, s.indirect])).toEqual([[2, 'insert', false], [4, 'delete', true]]);
    const human = cli('history', path, 't', '1');
    expect(human.stdout).toContain('name: \'ada\' → \'Ada\'');
    expect(cli('history', path, 't', '1', '--scan', '--json').stdout).toBe(history.stdout);
  });

  it('ok: blame per row and per column', () => {
    const path = cliDatabase();
    const lines = ndjson(cli('blame', path, 't', '--json').stdout);
    expect(lines.map((l) => [l.key, l.seq, l.actor])).toEqual([[['1'], 3, 'carol']]);
    const one = ndjson(cli('blame', path, 'c', '--where', '1', '--where', 'x', '--json').stdout);
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ seq: 2, actor: 'bob', columns: { t_id: { seq: 2 }, k: { seq: 2 } } });
    const byColumn = ndjson(cli('blame', path, 't', '--where', '1', '--json').stdout)[0]!;
    expect(byColumn.columns).toMatchObject({ id: { seq: 1 }, name: { seq: 3, actor: 'carol' }, n: { seq: 3 } });
  });

  it('err: usage', () => {
    const path = cliDatabase();
    const result = cli('history', path, 't', '--json');
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr).error.code).toBe('CLI_USAGE');
  });
});
