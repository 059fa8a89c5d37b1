/** The built CLI run as a real process, and a small database made through it, for the audit tests. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function ndjson(text: string): Record<string, unknown>[] {
  return text.trim().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A small journaled database: 4 entries by three actors, with a cascade delete in entry 4. */
export async function cliDatabase(): Promise<string> {
  const path = join(tempDir('ct-audit-cli-'), 'app.db');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
    CREATE TABLE c(t_id INTEGER REFERENCES t(id) ON DELETE CASCADE, k TEXT, PRIMARY KEY (t_id, k));`);
  db.close();
  const trail = await openTrail(path);
  try {
    const run = (sql: string, actor: string, message: string) => trail.write((d) => d.exec(sql), { actor, message });
    await run(`INSERT INTO t VALUES (1, 'ada', 1), (2, 'bob', 2)`, 'alice', 'seed');
    await run(`INSERT INTO c VALUES (1, 'x'), (2, 'y')`, 'bob', 'children');
    await run(`UPDATE t SET name = 'Ada', n = 10 WHERE id = 1`, 'carol', 'fix name');
    await run(`DELETE FROM t WHERE id = 2`, 'alice', 'drop bob');
  } finally {
    await trail.close();
  }
  return path;
}
