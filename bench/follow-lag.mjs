// What the follow-lag benchmarks share (bench/replica.bench.mjs, bench/nats.bench.mjs): child processes that
// print "ready" and then one line per event, a writer at a fixed rate stamping each commit, the lag from
// each commit to the first replica COMMIT at or past it, and its percentiles; and the children's side of
// it (the primary of one-row entries, the writer and follower modes).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const wallMs = () => performance.timeOrigin + performance.now();

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A child process of `script` in `mode`; its stdout lines are collected, `isReady` resolves on "ready". */
export function startChild(script, mode, ...args) {
  const child = spawn(process.execPath, [script, mode, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buffer = '';
  let ready;
  const isReady = new Promise((resolve) => (ready = resolve));
  child.stdout.on('data', (data) => {
    buffer += data;
    const parts = buffer.split('\n');
    buffer = parts.pop();
    for (const line of parts) {
      if (line === 'ready') ready();
      else lines.push(line);
    }
  });
  return { process: child, lines, isReady, stop: () => new Promise((resolve) => { child.on('exit', resolve); child.kill('SIGTERM'); }) };
}

/** "applied <seq> <wall ms>" lines of a follower child: seq → when its replica COMMIT was seen. */
export function appliedTimes(lines) {
  return new Map(lines.map((line) => line.split(' ')).filter(([word]) => word === 'applied').map(([, seq, ms]) => [Number(seq), Number(ms)]));
}

/** Runs `script writer <primary> <rate> <count>` to the end: [seq, before ms, after ms] per commit. */
export function runWriter(script, primary, rate, count) {
  const writer = spawnSync(process.execPath, [script, 'writer', primary, rate, count], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (writer.status !== 0) throw new Error(`writer: ${writer.stderr}`);
  return writer.stdout.trim().split('\n').map((line) => line.split(' ')).map(([, seq, beforeMs, afterMs]) => [Number(seq), Number(beforeMs), Number(afterMs)]);
}

/** Waits until the follower's lines show `seq` applied (or 30 s). */
export async function untilApplied(follower, seq) {
  const deadline = Date.now() + 30_000;
  while (!appliedTimes(follower.lines).has(seq) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * Lag of each commit: a batch commits several entries at once, so an entry's replica COMMIT is the first
 * applied position at or past it. From the writer's write() returning (COMMIT is before it) and from its call.
 */
export function lagDistribution(commits, applied) {
  const appliedSeqs = [...applied.keys()].sort((a, b) => a - b);
  const lags = [];
  const upper = [];
  let index = 0;
  for (const [seq, beforeMs, afterMs] of commits) {
    while (index < appliedSeqs.length && appliedSeqs[index] < seq) index += 1;
    if (index >= appliedSeqs.length) continue;
    lags.push(applied.get(appliedSeqs[index]) - afterMs);
    upper.push(applied.get(appliedSeqs[index]) - beforeMs);
  }
  lags.sort((a, b) => a - b);
  upper.sort((a, b) => a - b);
  const elapsedS = (commits.at(-1)[2] - commits[0][2]) / 1000;
  return { lags, upper, count: commits.length, rate: commits.length / elapsedS, missing: commits.length - lags.length };
}

/** The markdown table of a {@link lagDistribution}. */
export function printLagTable(lag) {
  console.log('| from | min | p50 | p90 | p99 | p99.9 | max |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, list] of [['write() returned', lag.lags], ['write() called', lag.upper]]) {
    const p = (q) => percentile(list, q).toFixed(2);
    console.log(`| ${name} | ${list[0].toFixed(2)} | ${p(50)} | ${p(90)} | ${p(99)} | ${p(99.9)} | ${list.at(-1).toFixed(2)} |`);
  }
}

/** The writer child's loop: `write(i)` at `rate` per second, "commit <seq> <before ms> <after ms>" per entry. */
export async function writeAtRate(rate, count, write) {
  const intervalMs = 1000 / Number(rate);
  const start = performance.now();
  for (let i = 0; i < Number(count); i++) {
    const due = start + i * intervalMs;
    while (performance.now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now() - 1)));
    const before = wallMs();
    const entry = await write(i);
    // COMMIT happened between the two stamps (the second also covers the head marker and the promise).
    process.stdout.write(`commit ${entry.seq} ${before} ${wallMs()}\n`);
  }
}

/** The benchmarks' table: entries of one row each. */
export const ITEMS_SCHEMA = 'CREATE TABLE items(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, label TEXT NOT NULL)';

/** Child side: a new database file `name` over {@link ITEMS_SCHEMA} in a new directory under `dir`. */
export function newItemsDatabase(dir, prefix, name) {
  const path = join(mkdtempSync(join(dir, prefix)), name);
  const db = new DatabaseSync(path);
  db.exec(ITEMS_SCHEMA);
  db.close();
  return path;
}

/** Child side (mode `build`): a primary with `entries` one-row entries; returns its path. */
export async function buildItemsPrimary(dir, prefix, entries) {
  const { openTrail } = await import('../dist/index.js');
  const path = newItemsDatabase(dir, prefix, 'primary.db');
  const trail = await openTrail(path);
  for (let i = 0; i < Number(entries); i++) await trail.write((db) => db.prepare('INSERT INTO items(n, label) VALUES (?, ?)').run(i, `row-${i}`));
  await trail.close();
  return path;
}

/** Child side (mode `writer <primary> <rate> <count>`): one-row writes at `rate`/s, "commit …" lines (writeAtRate). */
export async function writeItems(primary, rate, count) {
  const { openTrail } = await import('../dist/index.js');
  const trail = await openTrail(primary, { lock: { idleReleaseMs: 60_000 } });
  await writeAtRate(rate, count, (i) => trail.write((db) => db.prepare('INSERT INTO items(n, label) VALUES (?, ?)').run(i, `row-${i}`)));
  await trail.close();
}

/**
 * Child side (mode `follower`): syncs `replica`, prints "ready", then "applied <seq> <wall ms>" per replica
 * COMMIT until SIGTERM; closes it.
 */
export async function followUntilSigterm(replica) {
  await replica.sync();
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  replica.on('applied', (position) => process.stdout.write(`applied ${position.seq} ${wallMs()}\n`));
  process.stdout.write('ready\n');
  await replica.follow({ signal: controller.signal });
  await replica.close();
}
