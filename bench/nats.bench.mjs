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
import { appliedTimes, lagDistribution, printLagTable, runWriter, startChild, untilApplied } from './follow-lag.mjs';
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

async function commitToReplicaLag(server) {
  const { path } = run('build', disk, 1);
  const replica = join(dirname(path), 'remote.db');
  const shipper = startChild(child, 'shipper', path, server.url, 'lag');
  await shipper.isReady;
  const follower = startChild(child, 'follower', server.url, 'lag', replica);
  await follower.isReady;
  const commits = runWriter(child, path, RATE, RATE * FOLLOW_SECONDS);
  await untilApplied(follower, commits.at(-1)[0]);
  await follower.stop();
  await shipper.stop();
  return lagDistribution(commits, appliedTimes(follower.lines));
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
  printLagTable(lag);
  console.log(`\n(goal p99 ≤ 50 ms${lag.missing > 0 ? `; ${lag.missing} entries never seen applied` : ''})`);
} finally {
  server.stop();
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
}
