/** `changetrail replicate` and `changetrail status <replica.db>` as real processes. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { cli, database, jsonError, MAIN } from '../cli/run-cli.js';
import { expectReplicaEquals } from './helpers.js';

function appliedSeq(replica: string): number {
  try {
    const db = new DatabaseSync(replica, { readOnly: true });
    try {
      return Number(db.prepare('SELECT seq FROM _changetrail_replica').get()?.seq ?? -1);
    } finally {
      db.close();
    }
  } catch {
    return -1; // not created yet
  }
}

function primary(): { db: string; replica: string } {
  const db = database('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
  expect(cli(['init', db]).code).toBe(0);
  for (let i = 0; i < 3; i++) expect(cli(['exec', db, `INSERT INTO t(name) VALUES ('n${i}')`]).code).toBe(0);
  return { db, replica: join(db, '..', 'replica.db') };
}

describe('changetrail replicate', () => {
  it('ok: catches up, prints the position (--json), and status shows position and lag', () => {
    const { db, replica } = primary();
    const run = cli(['replicate', db, replica, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ appliedSeq: 3, sourceHeadSeq: 3, lagEntries: 0 });
    expectReplicaEquals(db, replica);
    expect(cli(['exec', db, "INSERT INTO t(name) VALUES ('late')"]).code).toBe(0);
    const status = cli(['status', replica, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ appliedSeq: 3, sourceHeadSeq: 4, lagEntries: 1 });
    const human = cli(['status', replica]);
    expect(human.stdout).toMatch(/applied +entry 3/);
    expect(cli(['replicate', db, replica]).stdout).toMatch(/entry 4 /);
    expectReplicaEquals(db, replica);
  });

  it('err: refuses a file that is not a replica (exit 1, REPLICA_NOT_A_REPLICA); --force replaces it', () => {
    const { db } = primary();
    const other = database('CREATE TABLE precious(x)', 'other.db');
    const refused = cli(['replicate', db, other, '--json']);
    expect(refused.code).toBe(1);
    expect(jsonError(refused).code).toBe('REPLICA_NOT_A_REPLICA');
    expect(cli(['replicate', db, other, '--force']).code).toBe(0);
    expectReplicaEquals(db, other);
  });

  it('err: a source database changetrail does not track is CLI_USAGE saying to init it, and nothing is created', () => {
    const db = database('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    const replica = join(db, '..', 'replica.db');
    const refused = cli(['replicate', db, replica, '--json']);
    expect(refused.code).toBe(2);
    expect(jsonError(refused)).toMatchObject({ code: 'CLI_USAGE', message: expect.stringContaining(`changetrail init ${db}`) });
    expect(existsSync(replica) || existsSync(`${db}.changes`)).toBe(false);
  });

  it('ok: --rebuild starts over from the newest checkpoint (genesis pruned), as its help says', () => {
    const { db, replica } = primary();
    expect(cli(['replicate', db, replica]).code).toBe(0);
    expect(cli(['checkpoint', db]).code).toBe(0);
    expect(cli(['exec', db, "INSERT INTO t(name) VALUES ('after')"]).code).toBe(0);
    const pruned = cli(['prune', db, '--before', 'checkpoint', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout).removed).toContain('genesis.db');
    const rebuilt = cli(['replicate', db, replica, '--rebuild', '--json']);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(JSON.parse(rebuilt.stdout)).toMatchObject({ appliedSeq: 5, lagEntries: 0 });
    expectReplicaEquals(db, replica);
    expect(cli(['replicate', '--help']).stdout).toMatch(/--rebuild +start the replica over from the newest checkpoint or resync snapshot/);
  });

  it('ok: --follow applies new entries and stops cleanly on SIGTERM and SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const { db, replica } = primary();
      const child = spawn(process.execPath, [MAIN, 'replicate', db, replica, '--follow', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 20_000;
      // Polls the replica's position row directly (a CLI process per poll is slow on a loaded machine).
      const caughtUp = async (seq: number): Promise<void> => {
        for (;;) {
          if (appliedSeq(replica) >= seq) return;
          if (Date.now() > deadline) throw new Error(`follower did not reach ${seq}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      try {
        await caughtUp(3);
        expect(cli(['exec', db, "INSERT INTO t(name) VALUES ('followed')"]).code).toBe(0);
        await caughtUp(4);
        child.kill(signal);
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL'); // a no-op once it exited
      }
      expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ appliedSeq: 4 });
      expectReplicaEquals(db, replica);
      const check = new DatabaseSync(replica, { readOnly: true });
      expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 4 });
      check.close();
    }
  });
});
