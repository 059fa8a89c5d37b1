// Audit benchmark (npm run bench -- audit): a journal of ENTRIES one-row entries over ROWS rows (10
// tables; the first ROWS entries insert, the rest update a random row), by 10 actors. Each query is timed
// with the audit index and, in the same run, by a full scan of the journal doing the same query
// (index: 'off'). Library calls, in process: each includes opening the journal (head read from the
// database) and the index. The journal is built with the real writer on /dev/shm when it exists
// (100,000 fsynced writes on disk take minutes and are not what is measured).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { spawnSync } from 'node:child_process';
import { openTrail, rowHistory, blame, filterLog } from '../dist/index.js';
import { openAuditJournal } from '../dist/audit/audit-journal.js';
import { auditIndexPath, openAuditIndex, removeIndex } from '../dist/audit/audit-index.js';

const ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 100_000);
const ROWS = Number(process.env.BENCH_AUDIT_ROWS ?? 10_000);
const TABLES = 10;
const ACTORS = 10;
const RUNS = 20;
const SCAN_RUNS = 3;
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ct-audit-bench-'));
const path = join(dir, 'audit.db');

let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = (n) => Math.floor(rand() * n);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];
const time = (fn) => { const t = performance.now(); const value = fn(); return { ms: performance.now() - t, value }; };

async function build() {
  const db = new DatabaseSync(path);
  for (let t = 0; t < TABLES; t++) db.exec(`CREATE TABLE t${t}(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, note TEXT)`);
  db.close();
  const trail = await openTrail(path);
  const t0 = performance.now();
  for (let i = 0; i < ENTRIES; i++) {
    const actor = `agent-${pick(ACTORS)}`;
    if (i < ROWS) {
      const table = i % TABLES;
      await trail.write((d) => d.prepare(`INSERT INTO t${table}(id, v, note) VALUES (?, ?, ?)`).run(Math.floor(i / TABLES), i, `row ${i}`), { actor, message: `insert ${i}` });
    } else {
      const table = pick(TABLES);
      await trail.write((d) => d.prepare(`UPDATE t${table} SET v = ?, note = ? WHERE id = ?`).run(i, `update ${i}`, pick(ROWS / TABLES)), { actor, message: `update ${i}` });
    }
  }
  await trail.close();
  return (performance.now() - t0) / 1000;
}

function row() {
  return { table: `t${pick(TABLES)}`, key: [String(pick(ROWS / TABLES))] };
}

const queries = {
  'history of one row': (index) => { const r = row(); return rowHistory(path, r, { index }).length; },
  'blame of one row (per column)': (index) => { const r = row(); return blame(path, r.table, { where: r.key, index }).length; },
  'blame of a whole table (1,000 rows)': (index) => blame(path, `t${pick(TABLES)}`, { index }).length,
  'log --actor X --table T': (index) => filterLog(path, { actor: `agent-${pick(ACTORS)}`, table: `t${pick(TABLES)}` }, { index }).length,
};

const buildSeconds = await build();
console.log(`journal: ${ENTRIES.toLocaleString('en')} entries over ${ROWS.toLocaleString('en')} rows in ${TABLES} tables, ${ACTORS} actors (built in ${buildSeconds.toFixed(0)} s on ${dir.startsWith('/dev/shm') ? '/dev/shm' : 'disk'})\n`);

// Index build from scratch.
const journal = openAuditJournal(path);
removeIndex(auditIndexPath(journal.journalDir));
const built = time(() => openAuditIndex(journal));
built.value.close();
console.log(`index build from scratch: ${(built.ms / 1000).toFixed(2)} s = ${Math.round(ENTRIES / (built.ms / 1000)).toLocaleString('en')} entries/s\n`);

console.log('| query | with index: median | p95 | full scan: median | scan / index |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, query] of Object.entries(queries)) {
  query('auto'); // warm
  const indexed = [];
  let found = 0;
  for (let i = 0; i < RUNS; i++) { const r = time(() => query('auto')); indexed.push(r.ms); found += r.value; }
  const scanned = [];
  for (let i = 0; i < SCAN_RUNS; i++) scanned.push(time(() => query('off')).ms);
  console.log(`| ${name} (avg ${(found / RUNS).toFixed(0)} results) | ${median(indexed).toFixed(1)} ms | ${p95(indexed).toFixed(1)} ms | ${median(scanned).toFixed(0)} ms | ${(median(scanned) / median(indexed)).toFixed(0)}× |`);
}

// Incremental update: the index catching up after writes (opening it when current is the baseline).
const trail = await openTrail(path);
const current = [];
const afterOne = [];
for (let i = 0; i < RUNS; i++) {
  const c = time(() => openAuditIndex(openAuditJournal(path)));
  c.value.close();
  current.push(c.ms);
  await trail.write((d) => d.prepare('UPDATE t0 SET v = v + 1 WHERE id = 0').run(), { actor: 'agent-0' });
  const u = time(() => openAuditIndex(openAuditJournal(path)));
  u.value.close();
  afterOne.push(u.ms);
}
for (let i = 0; i < 1000; i++) await trail.write((d) => d.prepare('UPDATE t1 SET v = v + 1 WHERE id = ?').run(i % 100), { actor: 'agent-1' });
await trail.close();
const batch = time(() => openAuditIndex(openAuditJournal(path)));
batch.value.close();
console.log(`\nincremental update: open of a current index ${median(current).toFixed(2)} ms; after 1 new entry ${median(afterOne).toFixed(2)} ms ` +
  `(+${((median(afterOne) - median(current)) * 1000).toFixed(0)} µs for the entry); after 1,000 new entries ${batch.ms.toFixed(0)} ms ` +
  `(${((batch.ms - median(current)) / 1000 * 1000).toFixed(0)} µs per entry)`);

// End to end through the CLI (process start included), once each, for scale.
const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const wall = (...args) => { const t = performance.now(); const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' }); if (r.status !== 0) throw new Error(r.stderr); return performance.now() - t; };
const nodeStart = (() => { const t = performance.now(); spawnSync(process.execPath, ['-e', '0']); return performance.now() - t; })();
console.log(`\nCLI wall time (node start ≈ ${nodeStart.toFixed(0)} ms and status ${wall('status', path).toFixed(0)} ms for comparison): history ${wall('history', path, 't3', '7').toFixed(0)} ms, ` +
  `blame --where ${wall('blame', path, 't3', '--where', '7').toFixed(0)} ms, log --actor --table ${wall('log', path, '--actor', 'agent-3', '--table', 't3', '--oneline').toFixed(0)} ms`);
rmSync(dir, { recursive: true, force: true });
