// Admission lock benchmark: N = 1, 2, 4, 8 processes each acquire → tiny critical section → release in a
// loop for DURATION_MS. Reports acquisitions/s, handoff latency (holder's release() call → next holder's
// acquire() resolving, when the holder changes), fairness (fewest/most acquisitions per process), and the
// ratio against a baseline measured in the same run: the same processes doing SQLite write transactions
// (`BEGIN IMMEDIATE; UPDATE; COMMIT`, rollback journal, synchronous=FULL, busy_timeout) with no lock, the
// handoff the write path adds the lock to. CPU ms/acq is user + system time of all workers per acquisition
// (on 2 cores, CPU spent by waiters is taken from the holder). The DB-level benchmark is bench/write.bench.mjs.
//
//   npm run build && npx node bench/lock.bench.mjs [durationMs]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DURATION_MS = Number((process.argv[2] === 'worker' ? undefined : process.argv[2]) ?? process.env.LOCK_BENCH_MS ?? 3000);
const COUNTS = [1, 2, 4, 8];

if (process.argv[2] === 'worker') await worker(process.argv[3], process.argv[4]);
else await main();

async function main() {
  console.log(`# admission lock: ${DURATION_MS} ms per row, ${(await import('node:os')).cpus().length} cores, Node ${process.version}\n`);
  console.log('| processes | SQLite tx/s (baseline) | lock acq/s | ratio | handoff p50 ms | handoff p99 ms | CPU ms/acq | fewest / most per process |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const count of COUNTS) {
    const dir = mkdtempSync(join(tmpdir(), 'changetrail-lock-bench-'));
    try {
      const baseline = await run(count, 'sqlite', dir);
      const lock = await run(count, 'lock', dir);
      const handoffs = handoffLatencies(lock.records);
      const perProcess = lock.counts.toSorted((a, b) => a - b);
      console.log(`| ${count} | ${rate(baseline)} | ${rate(lock)} | ${(lock.total / baseline.total).toFixed(2)} | ` +
        `${quantile(handoffs, 0.5)} | ${quantile(handoffs, 0.99)} | ${(lock.cpuMs / lock.total).toFixed(3)} | ${perProcess[0]} / ${perProcess.at(-1)} |`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

function rate(result) {
  return Math.round(result.total / (DURATION_MS / 1000)).toLocaleString('en-US');
}

async function run(count, mode, dir) {
  if (mode === 'sqlite') await setupDatabase(join(dir, 'bench.db'));
  const children = Array.from({ length: count }, () => fork(new URL(import.meta.url).pathname, ['worker', mode, dir], { stdio: 'inherit' }));
  const ready = children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  }));
  await Promise.all(ready);
  const done = children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`worker exited ${code}`)); });
  }));
  const startAt = performance.timeOrigin + performance.now() + 50;
  for (const child of children) child.send({ startAt, durationMs: DURATION_MS });
  const results = await Promise.all(done);
  return {
    total: results.reduce((sum, r) => sum + r.count, 0),
    counts: results.map((r) => r.count),
    cpuMs: results.reduce((sum, r) => sum + r.cpuMs, 0),
    records: results.flatMap((r, worker) => r.records.map(([acquiredAt, releasedAt]) => ({ worker, acquiredAt, releasedAt }))),
  };
}

async function setupDatabase(path) {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode=delete; CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER); INSERT OR IGNORE INTO counter VALUES (1, 0)');
  db.close();
}

/** Times from a holder's release() to the next (different) holder's acquisition, in ms. */
function handoffLatencies(records) {
  const sorted = records.toSorted((a, b) => a.acquiredAt - b.acquiredAt);
  const latencies = [];
  for (let i = 1; i < sorted.length; i += 1) {
    const previous = sorted[i - 1];
    if (sorted[i].worker !== previous.worker) latencies.push(sorted[i].acquiredAt - previous.releasedAt);
  }
  return latencies;
}

function quantile(values, q) {
  if (values.length === 0) return '–';
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2);
}

async function worker(mode, dir) {
  const step = mode === 'lock' ? await lockStep(dir) : await sqliteStep(join(dir, 'bench.db'));
  process.send('ready');
  const { startAt, durationMs } = await new Promise((resolve) => process.once('message', resolve));
  const now = () => performance.timeOrigin + performance.now();
  while (now() < startAt) await new Promise((resolve) => setTimeout(resolve, 1));
  const records = [];
  const cpuBefore = process.cpuUsage();
  while (now() < startAt + durationMs) records.push(await step(now));
  const cpu = process.cpuUsage(cpuBefore);
  process.send({ count: records.length, records, cpuMs: (cpu.user + cpu.system) / 1000 }, () => process.disconnect());
}

async function lockStep(dir) {
  const { AdmissionLock } = await import('../dist/admission/lock.js');
  let counter = 0;
  return async (now) => {
    const lock = await AdmissionLock.acquire({ journalDir: dir, timeoutMs: 60_000 });
    const acquiredAt = now();
    counter += 1;
    const releasedAt = now();
    await lock.release();
    return [acquiredAt, releasedAt];
  };
}

async function sqliteStep(path) {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path, { timeout: 60_000 });
  db.exec('PRAGMA synchronous=FULL');
  const update = db.prepare('UPDATE counter SET n = n + 1 WHERE id = 1');
  return async (now) => {
    db.exec('BEGIN IMMEDIATE');
    const acquiredAt = now();
    update.run();
    const releasedAt = now();
    db.exec('COMMIT');
    await new Promise((resolve) => setImmediate(resolve));
    return [acquiredAt, releasedAt];
  };
}

