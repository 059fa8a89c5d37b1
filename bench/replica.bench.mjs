// Read replica benchmark (npm run bench -- replica), every ratio measured in the same run:
// 1. Catch-up of ENTRIES one-row entries into a new replica, against inserting the same rows with a
//    prepared statement in batched transactions (the replica's batch size) on the same disk, both
//    journal_mode=TRUNCATE, synchronous=FULL (the replica's own). The primary is built on /dev/shm when it exists (building
//    100,000 fsynced writes on disk takes minutes and is not what is measured); replica and baseline are
//    written under the OS temp directory.
// 2. Follow lag, primary COMMIT → replica COMMIT (wall clock of two processes on one machine: the
//    writer's stamp is taken when trail.write resolves, just after COMMIT and the head marker), with a
//    writer at RATE writes/s on local disk: the distribution.
// 3. Peak RSS of a replica catching up over one LARGE-row entry, against the writer that wrote it.
import { spawnSync } from 'node:child_process';
import { appliedTimes, lagDistribution, percentile, runWriter, startChild, untilApplied } from './follow-lag.mjs';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRIES = Number(process.env.BENCH_REPLICA_ENTRIES ?? 100_000);
const RATE = Number(process.env.BENCH_REPLICA_RATE ?? 200);
const FOLLOW_SECONDS = Number(process.env.BENCH_REPLICA_FOLLOW_S ?? 10);
const LARGE = Number(process.env.BENCH_REPLICA_LARGE_ROWS ?? 1_000_000);
const BATCH = 5_000; // BATCH_ENTRIES_MAX in src/replica/replica.ts
const ROUNDS = Number(process.env.BENCH_REPLICA_ROUNDS ?? 3);
const child = fileURLToPath(new URL('./replica-child.mjs', import.meta.url));
const disk = tmpdir();
const memory = existsSync('/dev/shm') ? '/dev/shm' : disk;
const created = [];

function run(mode, ...args) {
  const result = spawnSync(process.execPath, ['--max-old-space-size=8192', child, mode, ...args.map(String)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${mode}: ${result.stderr}`);
  const value = JSON.parse(result.stdout.trim().split('\n').at(-1));
  if (value.path !== undefined) created.push(dirname(value.path));
  return value;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function followLag(synchronous) {
  const { path } = run('build', disk, 1);
  const replica = join(dirname(path), 'replica.db');
  const follower = startChild(child, 'follower', path, replica, synchronous);
  await follower.isReady;
  const commits = runWriter(child, path, RATE, RATE * FOLLOW_SECONDS);
  await untilApplied(follower, commits.at(-1)[0]);
  await follower.stop();
  return lagDistribution(commits, appliedTimes(follower.lines));
}

try {
  console.log(`Shared machine (${process.env.BENCH_NOTE ?? '2 cores shared with other jobs'}): figures vary run to run.\n`);
  console.log(`### catch-up: ${ENTRIES.toLocaleString('en-US')} one-row entries\n`);
  const { path: primary } = run('build', memory, ENTRIES);
  // Baseline and catch-up alternate (the shared disk's and CPUs' speed drift within seconds); medians.
  const baselines = [];
  const catchups = [];
  for (let round = 0; round < ROUNDS; round++) {
    baselines.push(run('baseline', disk, ENTRIES, BATCH));
    const catchup = run('catchup', primary, disk);
    if (catchup.entries !== ENTRIES) throw new Error(`caught up to ${catchup.entries}, expected ${ENTRIES}`);
    catchups.push(catchup);
    rmSync(created.at(-1), { recursive: true, force: true });
    rmSync(created.at(-2), { recursive: true, force: true });
  }
  const baseline = median(baselines.map((b) => b.seconds));
  const catchup = median(catchups.map((c) => c.seconds));
  const read = median(catchups.map((c) => c.readSeconds));
  const ratios = baselines.map((b, i) => b.seconds / catchups[i].seconds).sort((a, b) => a - b);
  const rate = (seconds) => Math.round(ENTRIES / seconds).toLocaleString('en-US');
  console.log(`${ROUNDS} rounds, baseline and catch-up alternating; medians (each round's ratio: ${ratios.map((r) => r.toFixed(2)).join(', ')})\n`);
  console.log('| case | seconds | rows/s | ratio |');
  console.log('|---|---:|---:|---:|');
  console.log(`| prepared INSERTs, ${BATCH} per transaction (baseline) | ${baseline.toFixed(2)} | ${rate(baseline)} | 1.00× |`);
  console.log(`| replica catch-up (${catchups[0].transactions} transactions) | ${catchup.toFixed(2)} | ${rate(catchup)} | ${(baseline / catchup).toFixed(2)}× (goal ≥ 0.8×) |`);
  console.log(`| reading and verifying the journal alone (same process, second pass) | ${read.toFixed(2)} | ${rate(read)} | ${(baseline / read).toFixed(2)}× |`);
  console.log('\n(the last ratio is the ceiling while reading is not overlapped: the catch-up with a free apply)');
  console.log(`\n### follow lag: writer at ${RATE} writes/s for ${FOLLOW_SECONDS} s, local disk\n`);
  const floor = run('commits', disk, RATE, Math.min(RATE * FOLLOW_SECONDS, 1000)).latencies.sort((a, b) => a - b);
  const lags = { full: await followLag('full'), normal: await followLag('normal') };
  const lag = lags.full;
  console.log(`${lag.count} entries at ${lag.rate.toFixed(0)} writes/s achieved (synchronous 'normal' run: ${lags.normal.rate.toFixed(0)}); lag to the replica's COMMIT in ms,`);
  console.log("from the writer's trail.write() returning (COMMIT is before it) and from its call (COMMIT is after it):\n");
  console.log('| from | min | p50 | p90 | p99 | p99.9 | max |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, list] of [['write() returned', lag.lags], ['write() called', lag.upper], ["write() returned, replica synchronous: 'normal'", lags.normal.lags]]) {
    const p = (q) => percentile(list, q).toFixed(2);
    console.log(`| ${name} | ${list[0].toFixed(2)} | ${p(50)} | ${p(90)} | ${p(99)} | ${p(99.9)} | ${list.at(-1).toFixed(2)} |`);
  }
  const q = (p) => percentile(floor, p).toFixed(2);
  console.log(`| floor: one-row COMMIT, replica's pragmas, same disk, just before (${floor.length} at ${RATE}/s) | ${floor[0].toFixed(2)} | ${q(50)} | ${q(90)} | ${q(99)} | ${q(99.9)} | ${floor.at(-1).toFixed(2)} |`);
  const missing = lags.full.missing + lags.normal.missing;
  console.log(`\n(goal p50 ≤ 5 ms, p99 ≤ 20 ms${missing > 0 ? `; ${missing} entries never seen applied` : ''})`);

  console.log(`\n### peak RSS: one entry of ${LARGE.toLocaleString('en-US')} rows\n`);
  const write = run('large-write', disk, LARGE);
  const follow = run('large-follow', write.path, disk);
  console.log('| process | seconds | peak RSS MiB |');
  console.log('|---|---:|---:|');
  console.log(`| writer (trail.write) | ${write.seconds.toFixed(2)} | ${write.peakRssMiB} |`);
  console.log(`| replica catching up | ${follow.seconds.toFixed(2)} | ${follow.peakRssMiB} (${(follow.peakRssMiB / write.peakRssMiB).toFixed(2)}× the writer's) |`);
} finally {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
}
