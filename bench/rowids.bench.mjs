// Cost of recording rowids of keyed rowid tables (src/write/rowid-capture.ts), measured in the same run
// against the same work without the capture: bulk inserts, updates, deletes and REPLACEs in one transaction
// on `p(sku TEXT PRIMARY KEY, title, code UNIQUE)`, and the fixed per-write cost (begin + collect) of a
// one-row write. In-memory-free: a real file with synchronous=OFF, so the figures are CPU, not fsync.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { RowidCapture } from '../dist/write/rowid-capture.js';

const ROWS = 20_000;
const ROUNDS = 5;

function open() {
  const db = new DatabaseSync(join(mkdtempSync(join(tmpdir(), 'ct-bench-rowids-')), 'b.db'));
  db.exec(`PRAGMA synchronous = OFF; CREATE TABLE p(sku TEXT PRIMARY KEY NOT NULL, title TEXT, code TEXT UNIQUE)`);
  return db;
}

const WORK = {
  insert: (db) => {
    const insert = db.prepare('INSERT INTO p VALUES (?, ?, ?)');
    for (let i = 0; i < ROWS; i++) insert.run(`sku-${i}`, `title ${i}`, `code-${i}`);
  },
  'update (non-key column)': (db) => db.exec(`UPDATE p SET title = title || '!'`),
  'replace (same key)': (db) => {
    const replace = db.prepare('INSERT OR REPLACE INTO p VALUES (?, ?, ?)');
    for (let i = 0; i < ROWS; i++) replace.run(`sku-${i}`, `t ${i}`, `code-${i}`);
  },
  delete: (db) => db.exec('DELETE FROM p'),
};

function run(withCapture) {
  const db = open();
  const capture = withCapture ? new RowidCapture(db) : null;
  const times = {};
  for (const [name, fn] of Object.entries(WORK)) {
    db.exec('BEGIN');
    const t = performance.now();
    capture?.begin();
    const session = db.createSession();
    fn(db);
    session.changeset();
    session.close();
    const rows = capture?.collect() ?? [];
    times[name] = performance.now() - t;
    times[`${name} rows`] = rows.reduce((n, table) => n + table.rows.length, 0);
    db.exec('COMMIT');
  }
  // Fixed cost per write: a one-row update, 2,000 times.
  const update = db.prepare(`UPDATE p SET title = ? WHERE sku = ?`);
  db.exec('BEGIN');
  db.prepare('INSERT INTO p VALUES (?, ?, ?)').run('one', 'x', 'c');
  const t = performance.now();
  for (let i = 0; i < 2000; i++) {
    capture?.begin();
    const session = db.createSession();
    update.run(`x${i}`, 'one');
    session.changeset();
    session.close();
    capture?.collect();
  }
  times['one-row write'] = (performance.now() - t) / 2000;
  db.exec('COMMIT');
  db.close();
  return times;
}

const best = (name, runs) => Math.min(...runs.map((r) => r[name]));
const without = [];
const withRuns = [];
for (let round = 0; round < ROUNDS; round++) {
  without.push(run(false));
  withRuns.push(run(true));
}
console.log(`| work (${ROWS} rows, one transaction, best of ${ROUNDS}) | without capture ms | with capture ms | ratio | rows recorded |`);
console.log('|---|---|---|---|---|');
for (const name of Object.keys(WORK)) {
  const a = best(name, without);
  const b = best(name, withRuns);
  console.log(`| ${name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(2)}× | ${withRuns[0][`${name} rows`]} |`);
}
const a = best('one-row write', without);
const b = best('one-row write', withRuns);
console.log(`| one-row update, per write (session + changeset${''}) | ${(a * 1000).toFixed(1)} µs | ${(b * 1000).toFixed(1)} µs | +${((b - a) * 1000).toFixed(1)} µs | 0 |`);
