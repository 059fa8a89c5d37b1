// Admitted writes vs raw node:sqlite transactions with the same pragmas (rollback journal, synchronous=FULL),
// measured in the same run: single-process latency, journal bytes per changed row, and multi-process
// throughput with 1, 2, 4 and 8 writers (raw writers use only BEGIN IMMEDIATE + busy timeout).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const SCHEMA = 'CREATE TABLE bench (id INTEGER PRIMARY KEY, pid INTEGER, payload TEXT)';
const fresh = (name) => {
  const path = join(mkdtempSync(join(tmpdir(), `ct-bench-${name}-`)), 'bench.db');
  const db = new DatabaseSync(path);
  db.exec(SCHEMA);
  db.close();
  return path;
};
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const fmt = (ms) => ms.toFixed(3);

async function latency(n) {
  const rawPath = fresh('raw');
  const raw = new DatabaseSync(rawPath);
  raw.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL');
  const rawInsert = raw.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
  const trail = await openTrail(fresh('trail'));
  const rawTimes = [];
  const trailTimes = [];
  // Interleave so both see the same disk and cache conditions.
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    raw.exec('BEGIN IMMEDIATE');
    rawInsert.run(1, 'x'.repeat(100));
    raw.exec('COMMIT');
    rawTimes.push(performance.now() - t);
    t = performance.now();
    await trail.write((db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(1, 'x'.repeat(100)));
    trailTimes.push(performance.now() - t);
  }
  raw.close();
  await trail.close();
  rawTimes.sort((a, b) => a - b);
  trailTimes.sort((a, b) => a - b);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log('| single-row write, 1 process | mean ms | p50 ms | p99 ms |');
  console.log('|---|---|---|---|');
  console.log(`| raw node:sqlite transaction | ${fmt(mean(rawTimes))} | ${fmt(percentile(rawTimes, 0.5))} | ${fmt(percentile(rawTimes, 0.99))} |`);
  console.log(`| changetrail admitted write | ${fmt(mean(trailTimes))} | ${fmt(percentile(trailTimes, 0.5))} | ${fmt(percentile(trailTimes, 0.99))} |`);
  console.log(`| **ratio (goal ≤ 1.3×)** | **${(mean(trailTimes) / mean(rawTimes)).toFixed(2)}×** | ${(percentile(trailTimes, 0.5) / percentile(rawTimes, 0.5)).toFixed(2)}× | ${(percentile(trailTimes, 0.99) / percentile(rawTimes, 0.99)).toFixed(2)}× |\n`);
}

async function bytesPerRow() {
  const path = fresh('bytes');
  const trail = await openTrail(path);
  const rows = 10_000;
  const before = journalBytes(trail.journalDir);
  await trail.write((db) => {
    const insert = db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
    for (let i = 0; i < rows; i++) insert.run(i, 'x'.repeat(100));
  });
  const afterInsert = journalBytes(trail.journalDir);
  await trail.write((db) => db.exec('UPDATE bench SET pid = pid + 1'));
  const afterUpdate = journalBytes(trail.journalDir);
  await trail.close();
  console.log('| journal bytes per changed row (10,000-row transactions, 100-byte text) | bytes/row |');
  console.log('|---|---|');
  console.log(`| INSERT | ${((afterInsert - before) / rows).toFixed(1)} |`);
  console.log(`| UPDATE of one integer column | ${((afterUpdate - afterInsert) / rows).toFixed(1)} |\n`);
}

function journalBytes(dir) {
  return readdirSync(dir).filter((f) => f.endsWith('.seg')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

async function throughput(mode, processes, durationMs) {
  const path = fresh(`${mode}-${processes}`);
  if (mode === 'trail') await (await openTrail(path)).close();
  const startAt = Date.now() + 1500; // every child starts together, after its startup
  const child = new URL('./write-child.mjs', import.meta.url).pathname;
  const counts = await Promise.all(Array.from({ length: processes }, () => new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, mode, path, String(durationMs), String(startAt)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out).count) : reject(new Error(`${mode} writer exited ${code}`))));
  })));
  return counts.reduce((a, b) => a + b, 0) / (durationMs / 1000);
}

await latency(Number(process.env.BENCH_WRITES ?? 400));
await bytesPerRow();
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
console.log(`| writer processes | raw tx/s (BEGIN IMMEDIATE + busy timeout) | changetrail tx/s | ratio (goal ≥ 0.8× at 4) |`);
console.log('|---|---|---|---|');
for (const processes of [1, 2, 4, 8]) {
  const raw = await throughput('raw', processes, durationMs);
  const trail = await throughput('trail', processes, durationMs);
  console.log(`| ${processes} | ${raw.toFixed(0)} | ${trail.toFixed(0)} | ${(trail / raw).toFixed(2)}× |`);
}
