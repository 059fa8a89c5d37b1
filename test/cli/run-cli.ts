/** Runs the built CLI (dist/cli/main.js) as a real process. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { tempDir } from '../helpers/db.js';

/** CT_TEST_MAIN runs the suites against another build (e.g. an older main, to see the tests fail there). */
export const MAIN = process.env.CT_TEST_MAIN ?? new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], options: SpawnSyncOptions = {}): CliResult {
  const env = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, ...options.env };
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', ...options, env });
  return { code: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** A new database file with `sql` run in it (no journal yet). */
export function database(sql = 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)', name = 'app.db'): string {
  const path = join(tempDir('ct-cli-'), name);
  const db = new DatabaseSync(path);
  db.exec(sql);
  db.close();
  return path;
}

/** The `{ error }` object a --json failure prints on stderr. */
export function jsonError(result: CliResult): { code: string; details?: Record<string, unknown>; hint?: string; message: string } {
  return (JSON.parse(result.stderr) as { error: never }).error;
}
