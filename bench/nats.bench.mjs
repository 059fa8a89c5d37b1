// NATS shipping benchmark (npm run bench -- nats), every ratio measured in the same run, against a real
// nats-server (NATS_SERVER, else /usr/sbin/nats-server) started on a free loopback port with its store
// under the OS temp directory:
// 1. Shipping a backlog of ENTRIES one-row entries (shipJournal, up to 256 publishes in flight): entries/s
//    and MB/s of frames, against raw JetStream publishes of messages of the same size with the same window,
//    message ids and expected-last-sequence headers (the transport's own ceiling on this machine). The
//    primary is built on /dev/shm when it exists (not what is measured).
// 2. Primary COMMIT → remote replica COMMIT with a writer at RATE writes/s, `ship --follow` and a natsSource
//    follower as separate processes on one machine (wall clock): the distribution.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRIES = Number(process.env.BENCH_NATS_ENTRIES ?? 100_000);
const RATE = Number(process.env.BENCH_NATS_RATE ?? 200);
const FOLLOW_SECONDS = Number(process.env.BENCH_NATS_FOLLOW_S ?? 10);
const INFLIGHT = 256; // INFLIGHT_MAX in src/replica/nats-ship.ts
const child = fileURLToPath(new URL('./nats-child.mjs', import.meta.url));
const disk = tmpdir();
const memory = existsSync('/dev/shm') ? '/dev/shm' : disk;
const created = [];

function natsServerBinary() {
  for (const path of [process.env.NATS_SERVER, '/usr/sbin/nats-server', '/usr/bin/nats-server']) if (path && existsSync(path)) return path;
  throw new Error('nats-server not found: install the Debian package `nats-server` (or set NATS_SERVER)');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startServer() {
  const port = await freePort();
  const store = mkdtempSync(join(disk, 'ct-nats-bench-store-'));
  created.push(store);
  const server = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    server.stderr.on('data', (data) => {
      log += data;
      if (log.includes('Server is ready')) resolve();
    });
    server.on('exit', (code) => reject(new Error(`nats-server exited ${code}: ${log}`)));
  });
  return { url: `nats://127.0.0.1:${port}`, stop: () => server.kill('SIGKILL') };
}

function run(mode, ...args) {
  const result = spawnSync(process.execPath, [child, mode, ...args.map(String)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${mode}: ${result.stderr}`);
  const value = JSON.parse(result.stdout.trim().split('\n').at(-1));
  if (value.path !== undefined) created.push(dirname(value.path));
  return value;
}

function startChild(mode, ...args) {
  const process_ = spawn(process.execPath, [child, mode, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buffer = '';
  let ready;
  const isReady = new Promise((resolve) => (ready = resolve));
  process_.stdout.on('data', (data) => {
    buffer += data;
    const parts = buffer.split('\n');
    buffer = parts.pop();
    for (const line of parts) {
      if (line === 'ready') ready();
      else lines.push(line);
    }
  });
  return { process: process_, lines, isReady, stop: () => new Promise((resolve) => { process_.on('exit', resolve); process_.kill('SIGTERM'); }) };
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function commitToReplicaLag(server) {
  const { path } = run('build', disk, 1);
  const replica = join(dirname(path), 'remote.db');
  const shipper = startChild('shipper', path, server.url, 'lag');
  await shipper.isReady;
  const follower = startChild('follower', server.url, 'lag', replica);
  await follower.isReady;
  const count = RATE * FOLLOW_SECONDS;
  const writer = spawnSync(process.execPath, [child, 'writer', path, RATE, count], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (writer.status !== 0) throw new Error(`writer: ${writer.stderr}`);
  const commits = writer.stdout.trim().split('\n').map((line) => line.split(' ').slice(1).map(Number));
  const last = commits.at(-1)[0];
  const applied = () => new Map(follower.lines.map((line) => line.split(' ')).filter(([word]) => word === 'applied').map(([, seq, ms]) => [Number(seq), Number(ms)]));
  const deadline = Date.now() + 30_000;
  while (!applied().has(last) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await follower.stop();
  await shipper.stop();
  const seen = applied();
  const appliedSeqs = [...seen.keys()].sort((a, b) => a - b);
  const lags = [];
  const upper = [];
  let index = 0;
  for (const [seq, beforeMs, afterMs] of commits) {
    while (index < appliedSeqs.length && appliedSeqs[index] < seq) index += 1;
    if (index >= appliedSeqs.length) continue;
    lags.push(seen.get(appliedSeqs[index]) - afterMs);
    upper.push(seen.get(appliedSeqs[index]) - beforeMs);
  }
  lags.sort((a, b) => a - b);
  upper.sort((a, b) => a - b);
  const elapsedS = (commits.at(-1)[2] - commits[0][2]) / 1000;
  return { lags, upper, count: commits.length, rate: commits.length / elapsedS, missing: commits.length - lags.length };
}

const server = await startServer();
try {
  console.log(`Shared machine (${process.env.BENCH_NOTE ?? '2 cores shared with other jobs'}): figures vary run to run. nats-server ${spawnSync(natsServerBinary(), ['--version'], { encoding: 'utf8' }).stdout.trim()}, loopback.\n`);
  console.log(`### shipping a backlog of ${ENTRIES.toLocaleString('en-US')} one-row entries\n`);
  const { path, journalBytes } = run('build', memory, ENTRIES);
  const frameBytes = Math.round((journalBytes - 40) / ENTRIES);
  const raw = run('raw', server.url, 'raw', ENTRIES, frameBytes, INFLIGHT);
  const shipped = run('ship', path, server.url, 'backlog');
  if (shipped.entries !== ENTRIES) throw new Error(`shipped ${shipped.entries}, expected ${ENTRIES}`);
  const mb = journalBytes / 1e6;
  console.log('| case | seconds | entries/s | MB/s | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| raw JetStream publishes of ${frameBytes}-byte messages, ${INFLIGHT} in flight (baseline) | ${raw.seconds.toFixed(2)} | ${Math.round(ENTRIES / raw.seconds).toLocaleString('en-US')} | ${(mb / raw.seconds).toFixed(1)} | 1.00× |`);
  console.log(`| shipJournal (read + verify the journal, publish, ack) | ${shipped.seconds.toFixed(2)} | ${Math.round(ENTRIES / shipped.seconds).toLocaleString('en-US')} | ${(mb / shipped.seconds).toFixed(1)} | ${(raw.seconds / shipped.seconds).toFixed(2)}× |`);
  console.log(`\n(goal ≥ 5,000 entries/s; ${mb.toFixed(1)} MB of frames, ${frameBytes} bytes each on average)`);

  console.log(`\n### primary COMMIT → remote replica COMMIT: writer at ${RATE} writes/s for ${FOLLOW_SECONDS} s\n`);
  const lag = await commitToReplicaLag(server);
  console.log(`${lag.count} entries at ${lag.rate.toFixed(0)} writes/s achieved (writer → ship --follow → nats-server → natsSource follower,`);
  console.log('each its own process); lag in ms from the writer\'s trail.write() returning (COMMIT is before it) and from its call:\n');
  console.log('| from | min | p50 | p90 | p99 | p99.9 | max |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, list] of [['write() returned', lag.lags], ['write() called', lag.upper]]) {
    const p = (q) => percentile(list, q).toFixed(2);
    console.log(`| ${name} | ${list[0].toFixed(2)} | ${p(50)} | ${p(90)} | ${p(99)} | ${p(99.9)} | ${list.at(-1).toFixed(2)} |`);
  }
  console.log(`\n(goal p99 ≤ 50 ms${lag.missing > 0 ? `; ${lag.missing} entries never seen applied` : ''})`);
} finally {
  server.stop();
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
}
