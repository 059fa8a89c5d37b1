// Admitted writes vs raw node:sqlite transactions with the same pragmas (rollback journal, synchronous=FULL),
// measured in the same run: single-process latency, journal bytes per changed row, and multi-process
// throughput with 1, 2, 4 and 8 writers (raw writers use only BEGIN IMMEDIATE + busy timeout).
import { spawn } from 'node:child_process';
import { fdatasyncSync, mkdtempSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
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

/**
 * The same durability protocol done with bare node:sqlite calls and no changetrail code: BEGIN IMMEDIATE,
 * a session, the changeset appended to a file and fdatasync'd, a head row updated, COMMIT. This is the
 * floor of the protocol on this disk.
 */
function protocolFloor() {
  const path = fresh('floor');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;
    CREATE TABLE head (id INTEGER PRIMARY KEY, seq INTEGER, hash BLOB, size INTEGER); INSERT INTO head VALUES (1, 0, zeroblob(32), 0)`);
  const fd = openSync(`${path}.frames`, 'w');
  let offset = 0;
  let seq = 0;
  return () => {
    db.exec('BEGIN IMMEDIATE');
    db.prepare('SELECT * FROM head WHERE id = 1').get();
    const session = db.createSession();
    db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(1, 'x'.repeat(100));
    const changeset = session.changeset();
    session.close();
    offset += writeSync(fd, changeset, 0, changeset.length, offset);
    fdatasyncSync(fd);
    db.prepare('UPDATE head SET seq = ?, hash = randomblob(32), size = ? WHERE id = 1').run(++seq, offset);
    db.exec('COMMIT');
  };
}

async function latency(n) {
  const rawPath = fresh('raw');
  const raw = new DatabaseSync(rawPath);
  raw.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL');
  const rawInsert = raw.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
  const floor = protocolFloor();
  const trail = await openTrail(fresh('trail'));
  const times = { raw: [], floor: [], trail: [] };
  // Interleave so all three see the same disk and cache conditions.
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    raw.exec('BEGIN IMMEDIATE');
    rawInsert.run(1, 'x'.repeat(100));
    raw.exec('COMMIT');
    times.raw.push(performance.now() - t);
    t = performance.now();
    floor();
    times.floor.push(performance.now() - t);
    t = performance.now();
    await trail.write((db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(1, 'x'.repeat(100)));
    times.trail.push(performance.now() - t);
  }
  raw.close();
  await trail.close();
  for (const list of Object.values(times)) list.sort((a, b) => a - b);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row = (name, xs) => `| ${name} | ${fmt(mean(xs))} | ${fmt(percentile(xs, 0.5))} | ${fmt(percentile(xs, 0.99))} | ${(mean(xs) / mean(times.raw)).toFixed(2)}× |`;
  console.log('| single-row write, 1 process | mean ms | p50 ms | p99 ms | mean vs raw (goal ≤ 1.3×) |');
  console.log('|---|---|---|---|---|');
  console.log(row('raw node:sqlite transaction', times.raw));
  console.log(row('protocol floor: same steps in bare node:sqlite (session, append + fdatasync, head row)', times.floor));
  console.log(row('**changetrail admitted write**', times.trail) + '\n');
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
