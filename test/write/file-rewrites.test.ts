/**
 * Issue 8 item 10: ANALYZE / PRAGMA optimize / VACUUM from the sqlite3 shell. Planner statistics
 * (sqlite_stat*) are not user data: verify --replay ignores them. Any commit outside changetrail moves the
 * file's change counter, so the next write is refused (FOREIGN_WRITE_DETECTED: changetrail cannot tell a
 * statistics update from a data change by the counter), but `resync --if-changed` proves by replay that no
 * row differs and acknowledges the new file state without a snapshot; a real change still gets one.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function sqlite3(path: string, sql: string): string {
  const result = spawnSync('sqlite3', [path, sql], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`sqlite3 ${sql}: ${result.stderr}`);
  return result.stdout;
}

function tracked(): string {
  const path = join(tempDir('ct-rewrite-'), 'app.db');
  sqlite3(path, 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX t_name ON t(name)');
  expect(cli('init', path).code).toBe(0);
  for (let i = 1; i <= 3; i++) expect(cli('exec', path, `INSERT INTO t VALUES (${i}, 'n${i}')`).code).toBe(0);
  return path;
}

const snapshots = (path: string) => readdirSync(`${path}.changes`).filter((n) => n.startsWith('snapshot-'));

describe('file rewrites outside changetrail', () => {
  for (const rewrite of ['ANALYZE', 'VACUUM']) {
    it(`ok: ${rewrite}: verify --replay still passes; the next write is refused until resync --if-changed acknowledges it without a snapshot`, () => {
      const path = tracked();
      sqlite3(path, rewrite);
      if (rewrite === 'ANALYZE') expect(sqlite3(path, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = '_changetrail_head'").trim()).not.toBe('0');
      const verify = cli('verify', path, '--replay');
      expect(verify.code, verify.stderr).toBe(0);
      const refused = cli('exec', path, `INSERT INTO t VALUES (4, 'n4')`);
      expect(refused.stderr).toContain('FOREIGN_WRITE_DETECTED');
      const acknowledged = cli('resync', path, '--if-changed', '--json');
      expect(acknowledged.code, acknowledged.stderr).toBe(0);
      expect(JSON.parse(acknowledged.stdout)).toBeNull();
      expect(snapshots(path)).toEqual([]);
      expect(cli('exec', path, `INSERT INTO t VALUES (4, 'n4')`).code).toBe(0);
      expect(cli('verify', path, '--replay').code).toBe(0);
    });
  }

  it('err: a real change is not acknowledged by --if-changed: it gets a resync entry and its snapshot', () => {
    const path = tracked();
    sqlite3(path, `UPDATE t SET name = 'manual' WHERE id = 2; VACUUM`);
    expect(cli('verify', path, '--replay').stderr).toContain('FOREIGN_WRITE_DETECTED');
    const resync = cli('resync', path, '--if-changed', '--json');
    expect(resync.code, resync.stderr).toBe(0);
    expect(JSON.parse(resync.stdout)).toMatchObject({ seq: 4, kind: 'resync' });
    expect(snapshots(path)).toEqual(['snapshot-4.db']);
    expect(cli('exec', path, `INSERT INTO t VALUES (5, 'n5')`).code).toBe(0);
    expect(cli('verify', path, '--replay').code).toBe(0);
  });
});
