// Exact apply and capture guard benchmark (CPU cost: synchronous=OFF, so fsync does not hide it).
//
// 1. Exact apply vs SQLite's plain apply, per entry: `BEGIN IMMEDIATE; db.applyChangeset(); COMMIT` is the
//    baseline on a table without triggers; applyChangesetExactly adds the shape check, the trigger query,
//    a savepoint, and on tables with triggers and FTS5 shadow tables the trigger drop/re-create and the
//    schema reload. Entries of 1 row and of 1000 rows.
// 2. Capture guard vs no guard, per write transaction (BEGIN IMMEDIATE, session, body, changeset, COMMIT):
//    the guard re-installs the authorizer on every mode change, which recompiles the statements a write uses.
//
//   npm run build && npx node bench/apply.bench.mjs [iterations]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { applyChangesetExactly } from '../dist/apply/apply-entry.js';
import { createSchemaReader } from '../dist/apply/schema.js';
import { installCaptureGuard } from '../dist/write/capture-guard.js';

const ITERATIONS = Number(process.argv[2] ?? 300);
const SCHEMA = `
CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT, body TEXT);
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');
CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN
  INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
  INSERT INTO audit(what) VALUES ('post ' || new.id);
END;
CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
END;`;

const dir = mkdtempSync(join(tmpdir(), 'changetrail-apply-bench-'));
let files = 0;
try {
  console.log(`# exact apply and capture guard: ${ITERATIONS} iterations per row, Node ${process.version}\n`);
  console.log('| case | baseline µs/op | changetrail µs/op | ratio |');
  console.log('|---|---:|---:|---:|');
  benchApply('1-row entry, table without triggers', 'kv', 1);
  benchApply('1000-row entry, table without triggers', 'kv', 1000);
  benchApply('1-row entry, table with triggers + FTS5 (baseline: trigger-less 1-row)', 'posts', 1);
  benchGuard('write: 1 cached INSERT', 1);
  benchGuard('write: 100 cached INSERTs', 100);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function open(name) {
  files += 1;
  const db = new DatabaseSync(join(dir, `${files}-${name}`));
  db.exec('PRAGMA synchronous = OFF; PRAGMA journal_mode = WAL');
  return db;
}

/** Changesets of `count` inserts each, captured on a source; `ITERATIONS` of them. */
function captureEntries(table, count) {
  const source = open(`source-${table}-${count}.db`);
  source.exec(SCHEMA);
  const insert = table === 'kv' ? source.prepare('INSERT INTO kv(v) VALUES (?)') : source.prepare('INSERT INTO posts(title, body) VALUES (?, ?)');
  const entries = [];
  for (let i = 0; i < ITERATIONS; i++) {
    source.exec('BEGIN IMMEDIATE');
    const session = source.createSession();
    for (let j = 0; j < count; j++) table === 'kv' ? insert.run(`value ${i}/${j}`) : insert.run(`title ${i}`, `alpha beta ${i} ${j}`);
    entries.push(session.changeset());
    session.close();
    source.exec('COMMIT');
  }
  source.close();
  return entries;
}

function target(name) {
  const db = open(name);
  db.exec(SCHEMA);
  return db;
}

function timeMicros(fn) {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1000;
}

function benchApply(label, table, rows) {
  const baselineEntries = captureEntries('kv', rows);
  const entries = table === 'kv' ? baselineEntries : captureEntries(table, rows);
  const plain = target(`plain-${label.length}-${rows}.db`);
  const exact = target(`exact-${label.length}-${rows}.db`);
  const baseline = timeMicros(() => {
    for (const changeset of baselineEntries) {
      plain.exec('BEGIN IMMEDIATE');
      if (!plain.applyChangeset(changeset)) throw new Error('baseline conflict');
      plain.exec('COMMIT');
    }
  });
  const measured = timeMicros(() => {
    for (const changeset of entries) applyChangesetExactly(exact, changeset);
  });
  row(label, baseline, measured);
  plain.close();
  exact.close();
}

function benchGuard(label, statements) {
  const run = (guarded) => {
    const db = target(`guard-${guarded}-${statements}.db`);
    const guard = guarded ? installCaptureGuard(db, createSchemaReader(db)) : null;
    const insert = (guard ? guard.run('internal', () => db.prepare('INSERT INTO kv(v) VALUES (?)')) : db.prepare('INSERT INTO kv(v) VALUES (?)'));
    const body = () => { for (let j = 0; j < statements; j++) insert.run('v'); };
    const micros = timeMicros(() => {
      for (let i = 0; i < ITERATIONS; i++) {
        db.exec('BEGIN IMMEDIATE');
        const session = db.createSession();
        if (guard) {
          guard.run('write', body);
          guard.run('internal', () => session.changeset());
        } else {
          body();
          session.changeset();
        }
        session.close();
        db.exec('COMMIT');
      }
    });
    db.close();
    return micros;
  };
  row(label, run(false), run(true));
}

function row(label, baselineMicros, measuredMicros) {
  const base = baselineMicros / ITERATIONS;
  const measured = measuredMicros / ITERATIONS;
  console.log(`| ${label} | ${base.toFixed(1)} | ${measured.toFixed(1)} | ${(measured / base).toFixed(2)} |`);
}
