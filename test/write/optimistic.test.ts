import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import { openTrail, ChangetrailError, type Trail } from '../../src/index.js';
import { tempTrail } from '../helpers/db.js';
import { runOptimisticWrite } from '../../src/write/optimistic.js';
import type { WriteOptions } from '../../src/write/options.js';

const AGENT = new URL('./fixtures/optimistic-agent.mjs', import.meta.url).pathname;
const LOCK = { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 };
const open: Trail[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function setup(sql: string): Promise<{ trail: Trail; other: Trail; path: string }> {
  const { trail, path } = await tempTrail(sql);
  const other = await openTrail(path, { lock: LOCK });
  open.push(trail, other);
  return { trail, other, path };
}

async function codeOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => 'resolved', (error: unknown) => error);
}

const COUNTER = 'CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0), (2, 0);';

function runAgent(path: string, args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT, path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(stdout.split('\n').filter(Boolean)) : reject(new Error(`agent exited ${code}: ${stderr}`))));
  });
}

describe('Trail.optimisticWrite', () => {
  it('ok: commits, records plannedAt in meta, returns the commit result', async () => {
    const { trail } = await setup(COUNTER);
    const done = await trail.optimisticWrite(
      (db) => ({ reads: [{ table: 'counter', key: 1 }], value: Number(db.prepare('SELECT n FROM counter WHERE id = 1').get()!.n) }),
      (db, n) => { db.prepare('UPDATE counter SET n = ? WHERE id = 1').run(n + 1); return n + 1; },
      { meta: { agent: 'a' } },
    );
    expect(done.result).toBe(1);
    expect(done.attempts).toBe(1);
    expect(done.entry?.meta).toEqual({ agent: 'a', plannedAt: done.plannedAt });
    expect(done.entry?.seq).toBe(done.plannedAt + 1);
  });

  it('ok: a write to an undeclared row does not conflict', async () => {
    const { trail, other } = await setup(COUNTER);
    const done = await trail.optimisticWrite(
      () => ({ reads: [{ table: 'counter', key: 1 }], value: other.write((db) => db.exec('UPDATE counter SET n = 5 WHERE id = 2')) }),
      (db) => db.exec('UPDATE counter SET n = 1 WHERE id = 1'),
      { retries: 0 },
    );
    expect(done.attempts).toBe(1);
  });

  it('err: conflict names table, key and entry; retries are bounded', async () => {
    const { trail, other } = await setup(COUNTER);
    let plans = 0;
    const error = await codeOf(trail.optimisticWrite(
      () => {
        plans += 1;
        return { reads: [{ table: 'COUNTER', key: '1' }], value: other.write((db) => db.exec('UPDATE counter SET n = n + 1 WHERE id = 1')) };
      },
      () => { throw new Error('commit must not run'); },
      { retries: 2, backoffMs: 1 },
    ));
    expect(ChangetrailError.is(error, 'OPTIMISTIC_CONFLICT')).toBe(true);
    const { details } = error as ChangetrailError<'OPTIMISTIC_CONFLICT'>;
    expect(plans).toBe(3);
    expect(details).toMatchObject({ table: 'COUNTER', key: [1], reason: 'row-changed', attempts: 3, seq: details.plannedAt + 1 });
  });

  it('err: conflict found under the lock (an entry lands between the early check and admission)', async () => {
    const { trail, other } = await setup(COUNTER);
    let landed = 0;
    const host = {
      journalDir: trail.journalDir,
      read: <T>(fn: (db: DatabaseSync) => T) => trail.read(fn),
      write: async (fn: (db: DatabaseSync) => unknown, options?: WriteOptions) => {
        if (landed++ === 0) await other.write((db) => db.exec('UPDATE counter SET n = 7 WHERE id = 1'));
        return trail.write(fn, options);
      },
    };
    let commits = 0;
    const done = await runOptimisticWrite(host,
      (db) => ({ reads: [{ table: 'counter', key: 1 }], value: Number(db.prepare('SELECT n FROM counter WHERE id = 1').get()!.n) }),
      (db, n) => { commits += 1; db.prepare('UPDATE counter SET n = ? WHERE id = 1').run(n + 1); },
      { backoffMs: 1 });
    expect(done.attempts).toBe(2);
    expect(commits).toBe(1);
    expect(trail.read((db) => db.prepare('SELECT n FROM counter WHERE id = 1').get()!.n)).toBe(8);
  });

  it('err: whole table, query result, schema change', async () => {
    const { trail, other } = await setup(COUNTER);
    const table = await codeOf(trail.optimisticWrite(
      () => ({ reads: [{ table: 'counter' }], value: other.write((db) => db.exec('UPDATE counter SET n = 9 WHERE id = 2')) }),
      () => undefined, { retries: 0 },
    ));
    expect((table as ChangetrailError<'OPTIMISTIC_CONFLICT'>).details).toMatchObject({ table: 'counter', key: null, reason: 'table-changed' });
    const query = await codeOf(trail.optimisticWrite(
      () => ({ reads: [{ sql: 'SELECT sum(n) AS s FROM counter' }], value: other.write((db) => db.exec('UPDATE counter SET n = 10 WHERE id = 2')) }),
      () => undefined, { retries: 0 },
    ));
    expect((query as ChangetrailError<'OPTIMISTIC_CONFLICT'>).details).toMatchObject({ reason: 'query-changed', sql: 'SELECT sum(n) AS s FROM counter' });
    const schema = await codeOf(trail.optimisticWrite(
      () => ({ reads: [{ table: 'counter', key: 1 }], value: other.migrate('CREATE TABLE extra (id INTEGER PRIMARY KEY)') }),
      () => undefined, { retries: 0 },
    ));
    expect((schema as ChangetrailError<'OPTIMISTIC_CONFLICT'>).details).toMatchObject({ reason: 'schema-changed', table: null });
  });

  it('ok: keys compare in SQLite value semantics (affinity, 1 = 1.0, composite keys by column)', async () => {
    const { trail, other } = await setup(`CREATE TABLE t (a TEXT, b REAL, v INTEGER, PRIMARY KEY (a, b)); INSERT INTO t VALUES ('5', 2.0, 0);`);
    const error = await codeOf(trail.optimisticWrite(
      () => ({ reads: [{ table: 't', key: { b: 2, a: 5 } }], value: other.write((db) => db.exec(`UPDATE t SET v = 1 WHERE a = '5'`)) }),
      () => undefined, { retries: 0 },
    ));
    expect((error as ChangetrailError<'OPTIMISTIC_CONFLICT'>).details).toMatchObject({ table: 't', key: ['5', 2], reason: 'row-changed' });
  });

  it('err: misuse is TypeError/RangeError', async () => {
    const { trail } = await setup(COUNTER);
    const run = (reads: unknown) => trail.optimisticWrite(() => ({ reads, value: 0 }) as never, () => undefined);
    await expect(run([{ table: 'missing', key: 1 }])).rejects.toThrow(RangeError);
    await expect(run([{ table: 'counter', key: [1, 2] }])).rejects.toThrow(RangeError);
    await expect(run([{ table: 'counter', key: { nope: 1 } }])).rejects.toThrow(RangeError);
    await expect(run([{ table: 'counter', key: 1, extra: true }])).rejects.toThrow(TypeError);
    await expect(run('counter')).rejects.toThrow(TypeError);
    await expect(trail.optimisticWrite(() => ({ reads: [], value: 0 }), () => undefined, { retries: -1 })).rejects.toThrow(RangeError);
    await expect(trail.optimisticWrite((async () => ({ reads: [], value: 0 })) as never, () => undefined)).rejects.toThrow(TypeError);
  });

  it('err: an aborted signal stops during the work with an AbortError and writes nothing', async () => {
    const { trail } = await setup(COUNTER);
    const controller = new AbortController();
    const pending = trail.optimisticWrite(
      () => ({ reads: [{ table: 'counter', key: 1 }], value: new Promise<number>((r) => setTimeout(() => r(1), 5_000)) }),
      (db) => db.exec('UPDATE counter SET n = 100 WHERE id = 1'),
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    const error = await codeOf(pending);
    expect((error as Error).name).toBe('AbortError');
    expect((await trail.status()).headSeq).toBe(0);
    await expect(trail.optimisticWrite(() => ({ reads: [], value: 0 }), () => undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('ok: write skew when a read is not declared; prevented when both are', async () => {
    const ACCOUNTS = 'CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL); INSERT INTO account VALUES (1, 1), (2, 0);';
    const { trail, other, path } = await setup(ACCOUNTS);
    // Each withdraws 1 from its own account if the sum stays >= 0, declaring only `declared`.
    // Each withdraws 1 from its own account if the sum stays >= 0, declaring only the rows in `declared`.
    const withdrawPlanned = (t: Trail, id: number, declared: number[], between?: () => Promise<unknown>) => t.optimisticWrite(
      (db) => {
        const sum = Number(db.prepare('SELECT sum(balance) AS s FROM account').get()!.s);
        return { reads: declared.map((key) => ({ table: 'account', key })), value: (between?.() ?? Promise.resolve()).then(() => sum) };
      },
      (db, s) => (s - 1 >= 0 ? db.prepare('UPDATE account SET balance = balance - 1 WHERE id = ?').run(id) : undefined),
      { retries: 3, backoffMs: 1 },
    );
    let once = true;
    await withdrawPlanned(trail, 1, [1], () => (once ? ((once = false), withdrawPlanned(other, 2, [2])) : Promise.resolve()));
    const sumOf = () => { const db = new DatabaseSync(path, { readOnly: true }); try { return Number(db.prepare('SELECT sum(balance) AS s FROM account').get()!.s); } finally { db.close(); } };
    expect(sumOf()).toBe(-1);
    await trail.write((db) => db.exec('UPDATE account SET balance = 1 WHERE id = 1; UPDATE account SET balance = 0 WHERE id = 2'));
    once = true;
    const done = await withdrawPlanned(trail, 1, [1, 2], () => (once ? ((once = false), withdrawPlanned(other, 2, [1, 2])) : Promise.resolve()));
    expect(done.attempts).toBe(2);
    expect(done.entry).toBeNull();
    expect(sumOf()).toBe(0);
  });
});

describe('optimisticWrite across processes', () => {
  it('ok: lost-update: 8 processes read-modify-write one counter; final value == acknowledged writes', async () => {
    const { trail, path } = await tempTrail(COUNTER);
    open.push(trail);
    const runs = await Promise.all(Array.from({ length: 8 }, () => runAgent(path, ['counter', '6', '20'])));
    const acked = runs.flat().filter((l) => l.startsWith('ack ')).length;
    expect(acked).toBe(48);
    const n = trail.read((db) => Number(db.prepare('SELECT n FROM counter WHERE id = 1').get()!.n));
    expect(n).toBe(acked);
    const retried = runs.flat().filter((l) => l.startsWith('ack ') && l !== 'ack 1').length;
    expect(retried).toBeGreaterThan(0);
  }, 30_000);

  it('ok: write-skew: 8 processes decrement either of two rows whose sum must stay >= 0', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL); INSERT INTO account VALUES (1, 3), (2, 3);');
    open.push(trail);
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => runAgent(path, ['skew', '3', '20', String(1 + (i % 2))])));
    const lines = runs.flat();
    const balances = trail.read((db) => db.prepare('SELECT balance FROM account ORDER BY id').all().map((r) => Number(r.balance)));
    expect(balances[0]! + balances[1]!).toBe(0);
    expect(lines.filter((l) => l === 'ack').length).toBe(6);
    expect(lines.filter((l) => l.startsWith('gave-up')).length).toBe(0);
  }, 30_000);
});
