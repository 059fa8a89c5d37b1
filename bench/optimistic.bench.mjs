// npm run bench -- optimistic: agents that read a few rows, think, then write — optimisticWrite (think
// outside the lock) vs thinking inside `write` (holding it), 8 processes; a hot row (conflict and retry
// rates, lost updates); revalidation cost under the lock with 1,000 entries since the plan.
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';
import { buildReadSet, checkSince } from '../dist/write/optimistic.js';
import { readHead } from '../dist/write/head-row.js';

const root = mkdtempSync(join(tmpdir(), 'ct-bench-optimistic-'));
let n = 0;
const AGENTS = 8;
const THINK_MS = 50;
const SETUP = `CREATE TABLE shared (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
  INSERT INTO shared VALUES (1, 1), (2, 2), (3, 3), (4, 4);
  CREATE TABLE agent (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
  WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 8) INSERT INTO agent SELECT i, 0 FROM k;
  CREATE TABLE hot (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO hot VALUES (1, 0);`;

async function fresh() {
  const path = join(root, `b${n++}.db`);
  const db = new DatabaseSync(path);
  db.exec(SETUP);
  db.close();
  await (await openTrail(path)).close();
  return path;
}

async function agents(mode, durationMs) {
  const path = await fresh();
  const startAt = Date.now() + 2000;
  const child = new URL('./optimistic-child.mjs', import.meta.url).pathname;
  const results = await Promise.all(Array.from({ length: AGENTS }, (_, i) => new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, mode, path, String(i + 1), String(durationMs), String(startAt), String(THINK_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${mode} agent exited ${code}`))));
  })));
  const sum = (k) => results.reduce((a, r) => a + r[k], 0);
  const db = new DatabaseSync(path, { readOnly: true });
  const stored = mode === 'hot' ? Number(db.prepare('SELECT n FROM hot').get().n) : Number(db.prepare('SELECT sum(n) AS s FROM agent').get().s);
  db.close();
  return { commits: sum('commits'), attempts: sum('attempts'), gaveUp: sum('gaveUp'), perSecond: sum('commits') / (durationMs / 1000), stored };
}

async function revalidation(entryCount, rounds) {
  const path = await fresh();
  const trail = await openTrail(path);
  const writer = await openTrail(path);
  const timings = { full: [], delta: [] };
  for (let r = 0; r < rounds; r++) {
    const { reads, plannedAt } = trail.read((db) => ({
      reads: buildReadSet(db, [1, 2, 3].map((key) => ({ table: 'shared', key })).concat([{ table: 'agent', key: 1 }])),
      plannedAt: readHead(db).seq,
    }));
    // 1,000 entries by another writer, none touching the declared rows (each changes 1 row of agent 2..8).
    for (let i = 0; i < entryCount; i++) await writer.write((db) => db.prepare('UPDATE agent SET n = n + 1 WHERE id = ?').run(2 + (i % 7)));
    const early = trail.read((db) => checkSince(trail.journalDir, db, reads, plannedAt));
    await trail.write((db) => {
      let t = performance.now();
      const full = checkSince(trail.journalDir, db, reads, plannedAt);
      timings.full.push((performance.now() - t) * 1000);
      t = performance.now();
      const delta = checkSince(trail.journalDir, db, reads, early.checkedAt, plannedAt);
      timings.delta.push((performance.now() - t) * 1000);
      if (full.conflict !== null || delta.conflict !== null) throw new Error('unexpected conflict');
    });
  }
  await writer.close();
  await trail.close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { full: median(timings.full), delta: median(timings.delta), min: Math.min(...timings.full) };
}

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5000);
console.log(`Shared machine (2 cores shared with other sessions): figures are indicative. ${AGENTS} agent processes, think ${THINK_MS} ms, ${durationMs / 1000} s each.\n`);
const locked = await agents('locked', durationMs);
const optimistic = await agents('optimistic', durationMs);
console.log('| own-row agents (read 3 shared rows + own row, think, write own row) | commits/s | commits | attempts per commit | lost updates |');
console.log('|---|---|---|---|---|');
console.log(`| think inside \`write\` (holding the lock) | ${locked.perSecond.toFixed(1)} | ${locked.commits} | ${(locked.attempts / locked.commits).toFixed(2)} | ${locked.commits - locked.stored} |`);
console.log(`| **optimisticWrite** (think outside the lock) | ${optimistic.perSecond.toFixed(1)} | ${optimistic.commits} | ${(optimistic.attempts / optimistic.commits).toFixed(2)} | ${optimistic.commits - optimistic.stored} |`);
console.log(`| ratio (goal ≥ 6×) | ${(optimistic.perSecond / locked.perSecond).toFixed(2)}× | | | |\n`);
const hot = await agents('hot', durationMs);
const conflicts = hot.attempts - hot.commits;
console.log('| hot row: 8 agents increment one counter (think 50 ms) | value |');
console.log('|---|---|');
console.log(`| commits/s | ${hot.perSecond.toFixed(1)} |`);
console.log(`| attempts (plans run) | ${hot.attempts} |`);
console.log(`| conflict rate (conflicts / attempts) | ${(100 * conflicts / hot.attempts).toFixed(1)}% |`);
console.log(`| retries per commit | ${(conflicts / Math.max(1, hot.commits)).toFixed(2)} |`);
console.log(`| gave up (retries exhausted, 1,000 allowed) | ${hot.gaveUp} |`);
console.log(`| acknowledged increments / counter value / lost updates | ${hot.commits} / ${hot.stored} / ${hot.commits - hot.stored} |\n`);
const cost = await revalidation(1000, Number(process.env.BENCH_ROUNDS ?? 5));
console.log('| revalidation under the lock, 1,000 entries since the plan (median of rounds) | µs (goal ≤ 1,000) |');
console.log('|---|---|');
console.log(`| decoding all 1,000 entries under the lock (no early check) | ${cost.full.toFixed(0)} (best ${cost.min.toFixed(0)}) |`);
console.log(`| **as optimisticWrite does it**: early check outside the lock, delta under it | ${cost.delta.toFixed(0)} |`);
rmSync(root, { recursive: true, force: true });
