// Admitted writes vs raw node:sqlite transactions with the same pragmas (synchronous=FULL), measured in the
// same run, interleaved: single-process latency in rollback and WAL mode, group commit in one process
// (16 and 64 writes in flight vs raw sequential transactions), journal bytes per changed row, and
// multi-process throughput and fairness with 1, 2, 4 and 8 writers (raw writers use only BEGIN IMMEDIATE +
// busy timeout), and with 16 writes in flight per process.
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
function protocolFloor(mode) {
  const path = fresh('floor');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = ${mode}; PRAGMA synchronous = FULL;
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

function rawDatabase(name, mode) {
  const db = new DatabaseSync(fresh(name));
  db.exec(`PRAGMA journal_mode = ${mode}; PRAGMA synchronous = FULL`);
  const insert = db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
  return { db, write: () => {
    db.exec('BEGIN IMMEDIATE');
    insert.run(1, 'x'.repeat(100));
    db.exec('COMMIT');
  } };
}

const insertBody = (db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(1, 'x'.repeat(100));

async function latency(n, mode) {
  const raw = rawDatabase(`raw-${mode}`, mode);
  const floor = protocolFloor(mode);
  const trail = await openTrail(fresh(`trail-${mode}`), { journalMode: mode === 'wal' ? 'wal' : 'delete' });
  const times = { raw: [], floor: [], trail: [] };
  // Interleave so all three see the same disk and cache conditions.
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    raw.write();
    times.raw.push(performance.now() - t);
    t = performance.now();
    floor();
    times.floor.push(performance.now() - t);
    t = performance.now();
    await trail.write(insertBody);
    times.trail.push(performance.now() - t);
  }
  raw.db.close();
  await trail.close();
  for (const list of Object.values(times)) list.sort((a, b) => a - b);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const goal = mode === 'wal' ? '1.4' : '1.3';
  const row = (name, xs) => `| ${name} | ${fmt(mean(xs))} | ${fmt(percentile(xs, 0.5))} | ${fmt(percentile(xs, 0.99))} | ${(mean(xs) / mean(times.raw)).toFixed(2)}× | ${(percentile(xs, 0.99) / percentile(times.raw, 0.99)).toFixed(2)}× |`;
  console.log(`| single-row write, 1 process, ${mode === 'wal' ? 'WAL' : 'rollback journal'}/FULL | mean ms | p50 ms | p99 ms | mean vs raw (goal ≤ ${goal}×) | p99 vs raw |`);
  console.log('|---|---|---|---|---|---|');
  console.log(row('raw node:sqlite transaction', times.raw));
  console.log(row('protocol floor: same steps in bare node:sqlite (session, append + fdatasync, head row)', times.floor));
  console.log(row('**changetrail admitted write**', times.trail) + '\n');
}

/** One process: raw sequential transactions vs changetrail with `inFlight` writes in flight (group commit), interleaved rounds. */
async function groupCommit(rounds, writesPerRound) {
  const raw = rawDatabase('group-raw', 'delete');
  const trail = await openTrail(fresh('group-trail'));
  const rates = { raw: [], 16: [], 64: [] };
  for (let round = 0; round < rounds; round++) {
    let t = performance.now();
    for (let i = 0; i < writesPerRound; i++) raw.write();
    rates.raw.push(writesPerRound / ((performance.now() - t) / 1000));
    for (const inFlight of [16, 64]) {
      t = performance.now();
      for (let done = 0; done < writesPerRound * 4; done += inFlight) {
        await Promise.all(Array.from({ length: inFlight }, () => trail.write(insertBody)));
      }
      rates[inFlight].push((writesPerRound * 4) / ((performance.now() - t) / 1000));
    }
  }
  raw.db.close();
  await trail.close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log('| group commit, 1 process, rollback/FULL, one row per write | tx/s (median of rounds) | vs raw sequential |');
  console.log('|---|---|---|');
  console.log(`| raw node:sqlite, sequential transactions | ${median(rates.raw).toFixed(0)} | 1.00× |`);
  console.log(`| changetrail, 16 writes in flight (goal ≥ 6×) | ${median(rates[16]).toFixed(0)} | ${(median(rates[16]) / median(rates.raw)).toFixed(2)}× |`);
  console.log(`| changetrail, 64 writes in flight (goal ≥ 10×) | ${median(rates[64]).toFixed(0)} | ${(median(rates[64]) / median(rates.raw)).toFixed(2)}× |\n`);
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

/** tx/s of `processes` writer processes together, and each one's share of the commits. */
async function throughput(mode, processes, durationMs, inFlight = 1) {
  const path = fresh(`${mode}-${processes}`);
  if (mode === 'trail') await (await openTrail(path)).close();
  const startAt = Date.now() + 1500; // every child starts together, after its startup
  const child = new URL('./write-child.mjs', import.meta.url).pathname;
  const counts = await Promise.all(Array.from({ length: processes }, () => new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, mode, path, String(durationMs), String(startAt), String(inFlight)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out).count) : reject(new Error(`${mode} writer exited ${code}`))));
  })));
  const total = counts.reduce((a, b) => a + b, 0);
  return { rate: total / (durationMs / 1000), shares: counts.map((c) => (total === 0 ? 0 : (c * processes) / total)) };
}

/** Each process's commits as a multiple of an equal share, lowest first (fair: none below 0.5). */
const formatShares = (shares) => [...shares].sort((a, b) => a - b).map((s) => s.toFixed(2)).join(' / ');

await latency(Number(process.env.BENCH_WRITES ?? 400), 'delete');
await latency(Number(process.env.BENCH_WRITES ?? 400), 'wal');
await groupCommit(Number(process.env.BENCH_ROUNDS ?? 5), Number(process.env.BENCH_GROUP_WRITES ?? 100));
await bytesPerRow();
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
console.log('| writer processes | raw tx/s (BEGIN IMMEDIATE + busy timeout) | changetrail tx/s | ratio (goal ≥ 0.85× at 4 and 8) | shares of an equal share, raw | shares, changetrail (goal: none < 0.5) |');
console.log('|---|---|---|---|---|---|');
/**
 * Raw and changetrail alternately, in `rounds` runs of `durationMs / rounds` each (the disk's speed drifts
 * within seconds on a shared machine); rates are totals over the rounds, shares over all commits.
 */
async function interleaved(processes, inFlight, rounds = Number(process.env.BENCH_MP_ROUNDS ?? 3)) {
  const results = { raw: [], trail: [] };
  for (let round = 0; round < rounds; round++) {
    results.raw.push(await throughput('raw', processes, durationMs / rounds));
    results.trail.push(await throughput('trail', processes, durationMs / rounds, inFlight));
  }
  const merge = (runs) => ({
    rate: runs.reduce((n, run) => n + run.rate, 0) / runs.length,
    shares: runs[0].shares.map((_, i) => runs.reduce((n, run) => n + run.shares[i], 0) / runs.length),
  });
  return { raw: merge(results.raw), trail: merge(results.trail) };
}

for (const processes of [1, 2, 4, 8]) {
  const { raw, trail } = await interleaved(processes, 1);
  console.log(`| ${processes} | ${raw.rate.toFixed(0)} | ${trail.rate.toFixed(0)} | ${(trail.rate / raw.rate).toFixed(2)}× | ${formatShares(raw.shares)} | ${formatShares(trail.shares)} |`);
}
const { raw: raw4, trail: grouped4 } = await interleaved(4, 16);
console.log(`| 4, 16 writes in flight each | ${raw4.rate.toFixed(0)} | ${grouped4.rate.toFixed(0)} | ${(grouped4.rate / raw4.rate).toFixed(2)}× | ${formatShares(raw4.shares)} | ${formatShares(grouped4.shares)} |`);
