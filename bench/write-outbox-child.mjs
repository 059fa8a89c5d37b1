// One measurement of bench/write-outbox.bench.mjs, in its own process, since the outbox threshold is read
// at load (CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX=0 gives the direct path for every frame: the protocol before
// the outbox, a journal fsync before every COMMIT).
//   latency <delete|wal> <writes> <payloadBytes>: raw transactions and admitted writes, interleaved; prints
//     {raw: [ms...], trail: [ms...]}
//   large <rows>: one write of <rows> rows (100-byte text), prints {ms, rssMb, journalBytes, databaseBytes}
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const SCHEMA = 'CREATE TABLE bench (id INTEGER PRIMARY KEY, pid INTEGER, payload TEXT)';
const [what, ...args] = process.argv.slice(2);

function fresh(name, mode) {
  const path = join(mkdtempSync(join(tmpdir(), `ct-bench-outbox-${name}-`)), 'bench.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = ${mode}; ${SCHEMA}`);
  db.close();
  return path;
}

const sizeOf = (dir, suffix) => readdirSync(dir).filter((f) => f.endsWith(suffix)).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

if (what === 'latency') {
  const [mode, writes, payloadBytes] = [args[0], Number(args[1]), Number(args[2])];
  const payload = 'x'.repeat(payloadBytes);
  const raw = new DatabaseSync(fresh('raw', mode));
  raw.exec('PRAGMA synchronous = FULL');
  const insert = raw.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
  const trail = await openTrail(fresh('trail', mode));
  const times = { raw: [], trail: [] };
  // A few warm-up rounds, then interleaved: both see the same disk and cache conditions.
  for (let i = -20; i < writes; i++) {
    let t = performance.now();
    raw.exec('BEGIN IMMEDIATE');
    insert.run(1, payload);
    raw.exec('COMMIT');
    const rawMs = performance.now() - t;
    t = performance.now();
    await trail.write((db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(1, payload));
    const trailMs = performance.now() - t;
    if (i >= 0) {
      times.raw.push(rawMs);
      times.trail.push(trailMs);
    }
  }
  raw.close();
  await trail.close();
  process.stdout.write(JSON.stringify(times));
} else if (what === 'large') {
  const rows = Number(args[0]);
  const mode = args[1] ?? 'delete';
  const path = fresh('large', mode);
  const payload = 'x'.repeat(100);
  let ms;
  let journalBytes = 0;
  if (process.env.BENCH_RAW === '1') {
    const db = new DatabaseSync(path);
    db.exec('PRAGMA synchronous = FULL');
    const t = performance.now();
    db.exec('BEGIN IMMEDIATE');
    const insert = db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
    for (let i = 0; i < rows; i++) insert.run(i, payload);
    db.exec('COMMIT');
    ms = performance.now() - t;
    db.close();
  } else {
    const trail = await openTrail(path);
    const t = performance.now();
    await trail.write((db) => {
      const insert = db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
      for (let i = 0; i < rows; i++) insert.run(i, payload);
    });
    ms = performance.now() - t;
    await trail.close();
    journalBytes = sizeOf(`${path}.changes`, '.seg');
  }
  const databaseBytes = statSync(path).size;
  process.stdout.write(JSON.stringify({ ms, rssMb: process.resourceUsage().maxRSS / 1024, journalBytes, databaseBytes }));
}
