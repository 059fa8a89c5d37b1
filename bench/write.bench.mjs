// Admitted writes vs raw node:sqlite transactions with the same pragmas (synchronous=FULL), measured in the
// same run, interleaved: single-process latency in rollback and WAL mode, group commit in one process
// (16 and 64 writes in flight vs raw sequential transactions), journal bytes per changed row, and
// multi-process throughput and fairness with 1, 2, 4 and 8 writers (raw writers use only BEGIN IMMEDIATE +
// busy timeout), and with 16 writes in flight per process. Ends with every goal, its measured ratio and
// PASS/FAIL. BENCH_ONLY=latency,group,bytes,mp picks sections.
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
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Goals and their verdicts, printed together at the end. */
const verdicts = [];
const verdict = (goal, value, pass) => {
  verdicts.push(`| ${goal} | ${value} | ${pass ? 'PASS' : 'FAIL'} |`);
  return pass ? 'PASS' : 'FAIL';
};


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
  const steps = {
    raw: async () => raw.write(),
    floor: async () => floor(),
    trail: () => trail.write(insertBody),
  };
  const order = ['raw', 'floor', 'trail'];
  // Interleaved, in an order that rotates every write, so all three see the same disk and cache
  // conditions and none always runs right after another's fsync.
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < order.length; k++) {
      const name = order[(i + k) % order.length];
      const t = performance.now();
      await steps[name]();
      times[name].push(performance.now() - t);
    }
  }
  raw.db.close();
  await trail.close();
  for (const list of Object.values(times)) list.sort((a, b) => a - b);
  const goal = mode === 'wal' ? 1.4 : 1.3;
  const label = mode === 'wal' ? 'WAL' : 'rollback';
  const row = (name, xs) => `| ${name} | ${fmt(mean(xs))} | ${fmt(percentile(xs, 0.5))} | ${fmt(percentile(xs, 0.99))} | ${(mean(xs) / mean(times.raw)).toFixed(2)}× | ${(percentile(xs, 0.99) / percentile(times.raw, 0.99)).toFixed(2)}× |`;
  console.log(`| single-row write, 1 process, ${mode === 'wal' ? 'WAL' : 'rollback journal'}/FULL | mean ms | p50 ms | p99 ms | mean vs raw (goal ≤ ${goal}×) | p99 vs raw (goal ≤ ${goal}×) |`);
  console.log('|---|---|---|---|---|---|');
  console.log(row('raw node:sqlite transaction', times.raw));
  console.log(row('protocol floor: same steps in bare node:sqlite (session, append + fdatasync, head row)', times.floor));
  console.log(row('**changetrail admitted write**', times.trail) + '\n');
  const meanRatio = mean(times.trail) / mean(times.raw);
  const p99Ratio = percentile(times.trail, 0.99) / percentile(times.raw, 0.99);
  verdict(`one-row write, ${label}/FULL: mean ≤ ${goal}× raw`, `${meanRatio.toFixed(2)}×`, meanRatio <= goal);
  verdict(`one-row write, ${label}/FULL: p99 ≤ ${goal}× raw`, `${p99Ratio.toFixed(2)}×`, p99Ratio <= goal);
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
  // Each round's rates against that round's raw rate (the disk drifts between rounds), then the median.
  const ratio = (inFlight) => median(rates[inFlight].map((rate, i) => rate / rates.raw[i]));
  console.log(`| group commit, 1 process, rollback/FULL, one row per write (${rounds} rounds) | tx/s (median of rounds) | vs raw sequential (median of round ratios) |`);
  console.log('|---|---|---|');
  console.log(`| raw node:sqlite, sequential transactions | ${median(rates.raw).toFixed(0)} | 1.00× |`);
  for (const [inFlight, goal] of [[16, 6], [64, 10]]) {
    const r = ratio(inFlight);
    console.log(`| changetrail, ${inFlight} writes in flight (goal ≥ ${goal}×) | ${median(rates[inFlight]).toFixed(0)} | ${r.toFixed(2)}× ${verdict(`group commit, ${inFlight} in flight ≥ ${goal}× raw sequential`, `${r.toFixed(2)}×`, r >= goal)} |`);
  }
  console.log('');
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

/**
 * `processes` long-lived writer processes (bench/write-child.mjs), each with a raw connection to one
 * database and a trail on another: raw and changetrail rounds of `roundMs` alternate `rounds` times, all
 * processes starting each round together. Rates are totals over the rounds; shares are each process's
 * commits over all rounds as a multiple of an equal share.
 */
async function throughput(processes, inFlight, rounds, roundMs) {
  const rawPath = fresh(`raw-${processes}`);
  const trailPath = fresh(`trail-${processes}`);
  await (await openTrail(trailPath)).close();
  const child = new URL('./write-child.mjs', import.meta.url).pathname;
  const workers = Array.from({ length: processes }, () => spawn(process.execPath, [child, rawPath, trailPath, String(inFlight)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const next = (worker) => new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`writer exited ${code}`));
    worker.once('exit', onExit);
    worker.once('message', (message) => { worker.off('exit', onExit); resolve(message); });
  });
  await Promise.all(workers.map(next));
  const counts = { raw: workers.map(() => 0), trail: workers.map(() => 0) };
  const perRound = { raw: [], trail: [] };
  for (let round = 0; round < rounds * 2; round++) {
    const mode = round % 2 === 0 ? 'raw' : 'trail';
    const startAt = Date.now() + 30;
    const replies = workers.map(next);
    for (const worker of workers) worker.send({ round, mode, startAt, durationMs: roundMs });
    const done = await Promise.all(replies);
    done.forEach((reply, i) => (counts[mode][i] += reply.count));
    perRound[mode].push(done.reduce((n, reply) => n + reply.count, 0));
  }
  for (const worker of workers) worker.send({ close: true });
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))));
  const summarize = (mode) => {
    const total = counts[mode].reduce((a, b) => a + b, 0);
    return { rate: total / ((rounds * roundMs) / 1000), shares: counts[mode].map((c) => (total === 0 ? 0 : (c * processes) / total)) };
  };
  // The median of the rounds' ratios (each trail round against the raw round just before it) resists a
  // disk that slows down for a second or two; the total ratio is shown beside it.
  const ratios = perRound.trail.map((n, i) => n / Math.max(1, perRound.raw[i])).sort((a, b) => a - b);
  return { raw: summarize('raw'), trail: summarize('trail'), medianRatio: ratios[ratios.length >> 1] };
}

/** Each process's commits as a multiple of an equal share, lowest first (fair: none below 0.5). */
const formatShares = (shares) => [...shares].sort((a, b) => a - b).map((s) => s.toFixed(2)).join(' / ');

const sections = new Set((process.env.BENCH_ONLY ?? 'latency,group,bytes,mp').split(','));
if (sections.has('latency')) {
  await latency(Number(process.env.BENCH_WRITES ?? 400), 'delete');
  await latency(Number(process.env.BENCH_WRITES ?? 400), 'wal');
}
if (sections.has('group')) await groupCommit(Number(process.env.BENCH_ROUNDS ?? 5), Number(process.env.BENCH_GROUP_WRITES ?? 100));
if (sections.has('bytes')) await bytesPerRow();
if (sections.has('mp')) {
  const rounds = Number(process.env.BENCH_MP_ROUNDS ?? 8);
  const roundMs = Number(process.env.BENCH_MP_ROUND_MS ?? 400);
  console.log(`| writer processes (${rounds} raw and ${rounds} changetrail rounds of ${roundMs} ms, ${roundMs * 2} ms with 8, alternating) | raw tx/s (BEGIN IMMEDIATE + busy timeout) | changetrail tx/s | ratio (goal ≥ 0.85× at 4 and 8) | median round ratio | shares of an equal share, raw | shares, changetrail (goal: none < 0.5) |`);
  console.log('|---|---|---|---|---|---|---|');
  const rows = (process.env.BENCH_MP_ROWS ?? '1,2,4,8,4x16').split(',').map((row) => row.split('x').map(Number));
  for (const [processes, inFlight = 1] of rows) {
    // A tenure lasts 25-200 ms (src/admission/tenure.ts): with 8 processes one rotation can exceed a
    // 400 ms round, so rounds grow with the number of processes for the shares to mean something.
    const { raw, trail, medianRatio } = await throughput(processes, inFlight, rounds, roundMs * Math.max(1, processes / 4));
    const minShare = Math.min(...trail.shares);
    let mark = '';
    if (inFlight === 1 && processes >= 4) {
      const ratio = trail.rate / raw.rate;
      mark = ` ${verdict(`${processes} processes: throughput ≥ 0.85× raw`, `${ratio.toFixed(2)}× (median round ${medianRatio.toFixed(2)}×)`, ratio >= 0.85)}`;
      verdict(`${processes} processes: lowest share ≥ 0.5`, minShare.toFixed(2), minShare >= 0.5);
    }
    const label = inFlight === 1 ? `${processes}` : `${processes}, ${inFlight} writes in flight each`;
    console.log(`| ${label} | ${raw.rate.toFixed(0)} | ${trail.rate.toFixed(0)} | ${(trail.rate / raw.rate).toFixed(2)}×${mark} | ${medianRatio.toFixed(2)}× | ${formatShares(raw.shares)} | ${formatShares(trail.shares)} |`);
  }
  console.log('');
}
console.log('| goal | measured | verdict |');
console.log('|---|---|---|');
for (const line of verdicts) console.log(line);
