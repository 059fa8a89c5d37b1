// npm run bench -- retention: what a checkpoint and a prune cost the writers. A 40 MB database (WAL and
// rollback-journal mode); one writer keeps writing one-row entries while trail.checkpoint() copies the
// database and binds the snapshot; its write latencies are compared with the same writer's without a
// checkpoint (the baseline, same run). Then a prune to that checkpoint is timed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const ROWS = Number(process.env.CT_BENCH_ROWS ?? 200_000);
const ROW_BYTES = 200;

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function writesWhile(trail, busy, startId) {
  const latencies = [];
  let id = startId;
  let done = false;
  const running = busy().finally(() => { done = true; });
  while (!done || latencies.length < 20) {
    const start = performance.now();
    await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(id++, 'w'.repeat(ROW_BYTES)));
    latencies.push(performance.now() - start);
    if (done && latencies.length >= 20) break;
  }
  return { latencies, result: await running };
}

async function measure(mode) {
  const dir = mkdtempSync(join(tmpdir(), 'ct-bench-retention-'));
  const path = join(dir, 'app.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = ${mode === 'wal' ? 'WAL' : 'DELETE'}; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`);
  db.exec('BEGIN');
  const insert = db.prepare('INSERT INTO t VALUES (?, ?)');
  for (let i = 1; i <= ROWS; i++) insert.run(i, 'x'.repeat(ROW_BYTES));
  db.exec('COMMIT');
  db.close();
  const trail = await openTrail(path, { busyTimeoutMs: 60_000 });
  try {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const baseline = await writesWhile(trail, () => sleep(1500), ROWS + 1);
    let checkpointMs = 0;
    const during = await writesWhile(trail, async () => {
      const start = performance.now();
      const result = await trail.checkpoint();
      checkpointMs = performance.now() - start;
      return result;
    }, ROWS + 100_000);
    const pruneStart = performance.now();
    const pruned = await trail.prune({ before: 'checkpoint' });
    const pruneMs = performance.now() - pruneStart;
    return { mode, baseline: baseline.latencies, during: during.latencies, checkpointMs, snapshotBytes: during.result.snapshot.size, pruneMs, removed: pruned.removed.length };
  } finally {
    await trail.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`${ROWS} rows of ${ROW_BYTES} bytes; one writer of one-row entries throughout (ms; shared machine)\n`);
console.log('| mode | checkpoint total | snapshot | write p50 baseline → during | write p99 baseline → during | write max baseline → during (ratio) | prune |');
console.log('|---|---|---|---|---|---|---|');
for (const mode of ['wal', 'delete']) {
  const r = await measure(mode);
  const f = (v) => v.toFixed(1);
  const maxBase = Math.max(...r.baseline);
  const maxDuring = Math.max(...r.during);
  console.log(`| ${mode} | ${f(r.checkpointMs)} | ${(r.snapshotBytes / 1e6).toFixed(1)} MB | ${f(percentile(r.baseline, 0.5))} → ${f(percentile(r.during, 0.5))} | ${f(percentile(r.baseline, 0.99))} → ${f(percentile(r.during, 0.99))} | ${f(maxBase)} → ${f(maxDuring)} (${(maxDuring / maxBase).toFixed(1)}×) | ${f(r.pruneMs)} (${r.removed} files) |`);
}
