// Changeset codec throughput: the TypeScript implementation (dist/changeset) against SQLite's own C
// implementation compiled to wasm (@sqlite.org/sqlite-wasm 3.54.1), on a ~10 MB changeset captured
// from a real node:sqlite session (three tables, mixed INSERT/UPDATE/DELETE).
//
//   C decode  = sqlite3changeset_start + sqlite3changeset_next to the end (the C iterator materialises
//               every value as an sqlite3_value, as decodeChangeset materialises JavaScript values)
//   C invert  = sqlite3changeset_invert
//   C combine = sqlite3changegroup_new, _add x2, _output, _delete
// Inputs are copied into wasm memory before timing; outputs are freed, not copied out.
// "ratio" is time(TypeScript) / time(C): below 1 the TypeScript code is faster, the goal is <= 1.5.
//
//   npm run build && npx node bench/changeset.bench.mjs [megabytes]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DatabaseSync } from 'node:sqlite';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { combineChangesets, decodeChangeset, invertChangeset, summarizeChangeset } from '../dist/changeset/index.js';

const TARGET_MB = Number(process.argv[2] ?? 10);
const ROUNDS = 9;

const { first, second } = capture(TARGET_MB);
const sqlite3 = await loadWasm();
const c = cApi(sqlite3);

console.log(`# changeset codec: ${mb(first)} MB + ${mb(second)} MB changesets, median of ${ROUNDS}, Node ${process.version}, SQLite wasm ${sqlite3.version.libVersion}\n`);
console.log('| operation | input MB | TypeScript MB/s | C (wasm) MB/s | ratio (time TS / time C) |');
console.log('|---|---:|---:|---:|---:|');
row('decode', first.length, () => decodeChangeset(first), () => c.iterate(first));
row('invert', first.length, () => invertChangeset(first), () => c.invert(first));
row('combine (2 inputs)', first.length + second.length, () => combineChangesets([first, second]), () => c.group([first, second]));
row('summarize (C: iterate)', first.length, () => summarizeChangeset(first), () => c.iterate(first));
c.release();

function row(name, bytes, ours, theirs) {
  const [tsMs, cMs] = medians(ours, theirs);
  const throughput = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(1);
  console.log(`| ${name} | ${(bytes / 1e6).toFixed(1)} | ${throughput(tsMs)} | ${throughput(cMs)} | ${(tsMs / cMs).toFixed(2)} |`);
}

/**
 * Median times of both, measured alternately so that both see the same machine load. The heap is warm,
 * as in a long-running process (and as the wasm heap of the C code is): forcing a full GC before each
 * TypeScript round makes the next large typed-array allocations ~20-30% slower (page faults and
 * external-memory GCs), which the C code, reusing its grown wasm memory, never pays.
 */
function medians(ours, theirs) {
  ours();
  theirs();
  const times = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    [ours, theirs].forEach((run, index) => {
      const start = performance.now();
      run();
      times[index].push(performance.now() - start);
    });
  }
  return times.map((list) => list.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]);
}

function mb(bytes) {
  return (bytes.length / 1e6).toFixed(1);
}

/** Two consecutive sessions of mixed writes over pre-filled tables, each about `megabytes` large. */
function capture(megabytes) {
  const db = new DatabaseSync(':memory:');
  db.exec(`
    CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, data BLOB, note TEXT);
    CREATE TABLE users(email TEXT PRIMARY KEY, name TEXT, score REAL, bio TEXT) WITHOUT ROWID;
    CREATE TABLE events(ts INTEGER, kind TEXT, payload TEXT, PRIMARY KEY(kind, ts));`);
  const rows = Math.round(megabytes * 13800);
  db.exec('BEGIN');
  fill(db, 0, rows);
  db.exec('COMMIT');
  const sessions = [];
  for (let pass = 0; pass < 2; pass++) {
    const session = db.createSession();
    db.exec('BEGIN');
    writes(db, pass, rows);
    db.exec('COMMIT');
    sessions.push(session.changeset());
    session.close();
  }
  db.close();
  return { first: sessions[0], second: sessions[1] };
}

function fill(db, from, count) {
  const item = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)');
  const user = db.prepare('INSERT INTO users VALUES (?, ?, ?, ?)');
  const event = db.prepare('INSERT INTO events VALUES (?, ?, ?)');
  for (let id = from; id < from + count; id++) {
    item.run(BigInt(id), `item ${id}`, BigInt(id % 1000), id * 0.25 + 0.1, Buffer.alloc(8 + (id % 24), id & 0xff), id % 3 === 0 ? null : 'a note of modest length');
    if (id % 2 === 0) user.run(`user${id}@example.com`, `User Number ${id}`, id / 7, 'bio '.repeat(id % 10));
    if (id % 3 === 0) event.run(BigInt(1_700_000_000 + id), ['create', 'update', 'login'][id % 3], JSON.stringify({ id, ok: true }));
  }
}

function writes(db, pass, rows) {
  const shift = pass * 7;
  db.prepare('UPDATE items SET qty = qty + 1 WHERE (id + ?) % 3 = 0').run(BigInt(shift));
  db.prepare("UPDATE items SET name = name || ' (renamed)', price = price * 2 WHERE (id + ?) % 5 = 1").run(BigInt(shift));
  db.prepare('DELETE FROM items WHERE (id + ?) % 11 = 2').run(BigInt(shift));
  db.prepare('UPDATE users SET score = score + 1 WHERE length(email) % 2 = ?').run(BigInt(pass));
  db.prepare('DELETE FROM events WHERE (ts + ?) % 4 = 0').run(BigInt(shift));
  fill(db, rows * (pass + 1) + 1, Math.round(rows / 4));
}

async function loadWasm() {
  const require = createRequire(import.meta.url);
  const wasmBinary = readFileSync(require.resolve('@sqlite.org/sqlite-wasm/sqlite3.wasm'));
  globalThis.self ??= globalThis;
  globalThis.location ??= new URL('file:///');
  return sqlite3InitModule({ wasmBinary, print: () => {}, printErr: () => {} });
}

/** Direct C calls on inputs copied into wasm memory once. */
function cApi({ capi, wasm }) {
  const inputs = new Map();
  const out = [wasm.alloc(8), wasm.alloc(8), wasm.alloc(8)];
  const pointerOf = (bytes) => {
    let pointer = inputs.get(bytes);
    if (pointer === undefined) {
      pointer = wasm.alloc(bytes.length);
      wasm.heap8u().set(bytes, pointer);
      inputs.set(bytes, pointer);
    }
    return pointer;
  };
  const check = (rc, what) => {
    if (rc !== 0) throw new Error(`${what} failed: ${rc}`);
  };
  return {
    iterate(bytes) {
      check(capi.sqlite3changeset_start(out[0], bytes.length, pointerOf(bytes)), 'sqlite3changeset_start');
      const iterator = wasm.peekPtr(out[0]);
      while (capi.sqlite3changeset_next(iterator) === 100);
      check(capi.sqlite3changeset_finalize(iterator), 'sqlite3changeset_next');
    },
    invert(bytes) {
      check(capi.sqlite3changeset_invert(bytes.length, pointerOf(bytes), out[1], out[2]), 'sqlite3changeset_invert');
      capi.sqlite3_free(wasm.peekPtr(out[2]));
    },
    group(list) {
      check(capi.sqlite3changegroup_new(out[0]), 'sqlite3changegroup_new');
      const group = wasm.peekPtr(out[0]);
      for (const bytes of list) check(capi.sqlite3changegroup_add(group, bytes.length, pointerOf(bytes)), 'sqlite3changegroup_add');
      check(capi.sqlite3changegroup_output(group, out[1], out[2]), 'sqlite3changegroup_output');
      capi.sqlite3_free(wasm.peekPtr(out[2]));
      capi.sqlite3changegroup_delete(group);
    },
    release() {
      for (const pointer of [...inputs.values(), ...out]) wasm.dealloc(pointer);
    },
  };
}
