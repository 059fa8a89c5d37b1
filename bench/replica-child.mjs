// Child processes of bench/replica.bench.mjs (one measurement per process, so peak RSS is its own).
//   build <dir> <entries>            primary with <entries> one-row entries (printed: {path})
//   baseline <dir> <rows> <batch>    the same rows inserted with a prepared statement, <batch> per transaction
//   catchup <primary> <dir>          a new replica caught up from genesis: {seconds, entries}
//   writer <primary> <rate> <count>  writes at <rate>/s, prints "commit <seq> <wall ms>" per entry
//   follower <primary> <replica> [full|normal]  follows, prints "applied <seq> <wall ms>" per commit, until SIGTERM
//   commits <dir> <rate> <count>     one-row COMMITs at <rate>/s with the replica's pragmas: {latencies}
//   large-write <dir> <rows>         one entry inserting <rows> rows: {path, peakRssMiB}
//   large-follow <primary> <dir>     a replica catching up over that entry: {seconds, peakRssMiB}
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openReplica, openTrail } from '../dist/index.js';
import { openJournalSource } from '../dist/replica/journal-source.js';
import { buildItemsPrimary, followUntilSigterm, newItemsDatabase, writeItems } from './follow-lag.mjs';

const [mode, ...args] = process.argv.slice(2);
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
const peakMiB = () => Math.round(Math.max(peak, process.resourceUsage().maxRSS * 1024) / 1048576);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

const newDatabase = (dir, name) => newItemsDatabase(dir, 'ct-replica-bench-', name);

if (mode === 'build') {
  const [dir, entries] = args;
  print({ path: await buildItemsPrimary(dir, 'ct-replica-bench-', entries) });
} else if (mode === 'baseline') {
  const [dir, rows, batch] = args;
  const path = newDatabase(dir, 'baseline.db');
  const db = new DatabaseSync(path);
  // The replica's own pragmas (src/replica/replica.ts open): a truncated rollback journal, full sync.
  db.exec('PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL');
  const insert = db.prepare('INSERT INTO items(id, n, label) VALUES (?, ?, ?)');
  const t = performance.now();
  for (let i = 0; i < Number(rows);) {
    db.exec('BEGIN IMMEDIATE');
    for (const end = Math.min(Number(rows), i + Number(batch)); i < end; i++) insert.run(i + 1, i, `row-${i}`);
    db.exec('COMMIT');
  }
  print({ path, seconds: (performance.now() - t) / 1000 });
  db.close();
} else if (mode === 'catchup' || mode === 'large-follow') {
  const [primary, dir] = args;
  const path = join(mkdtempSync(join(dir, 'ct-replica-bench-')), 'replica.db');
  const replica = await openReplica(path, { source: primary });
  let transactions = 0;
  replica.on('applied', () => { transactions += 1; });
  const t = performance.now();
  const position = await replica.sync();
  const seconds = (performance.now() - t) / 1000;
  await replica.close();
  if (mode === 'large-follow') {
    print({ path, seconds, entries: position.seq, transactions, peakRssMiB: peakMiB() });
    process.exit(0);
  }
  // Reading and verifying alone, timed apart (a wrapper timing each entry of the catch-up cost ~2 µs per
  // entry on its own): a second pass over the same entries through a new source, the file cache warm.
  const source = openJournalSource(primary);
  const r = performance.now();
  let read = 0;
  for (const entry of source.entriesAfter(source.root, source.readHead())) read += entry.changeset.byteLength > 0 ? 1 : 0;
  const readSeconds = (performance.now() - r) / 1000;
  source.close();
  print({ path, seconds, readSeconds, entries: position.seq, transactions, peakRssMiB: peakMiB() });
} else if (mode === 'writer') {
  await writeItems(...args);
} else if (mode === 'follower') {
  const [primary, replicaPath, synchronous = 'full'] = args;
  await followUntilSigterm(await openReplica(replicaPath, { source: primary, synchronous }));
} else if (mode === 'commits') {
  // The disk's own commit latency: one-row transactions at <rate>/s with the replica's pragmas, the floor
  // under the follower's lag (its every commit is one of these).
  const [dir, rate, count] = args;
  const path = newDatabase(dir, 'commits.db');
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL');
  const insert = db.prepare('INSERT INTO items(n, label) VALUES (?, ?)');
  const latencies = [];
  const start = performance.now();
  for (let i = 0; i < Number(count); i++) {
    const due = start + (i * 1000) / Number(rate);
    while (performance.now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now() - 1)));
    const t = performance.now();
    db.exec('BEGIN IMMEDIATE');
    insert.run(i, `row-${i}`);
    db.exec('COMMIT');
    latencies.push(performance.now() - t);
  }
  db.close();
  print({ path, latencies });
} else if (mode === 'large-write') {
  const [dir, rows] = args;
  const path = newDatabase(dir, 'large.db');
  const trail = await openTrail(path);
  const t = performance.now();
  await trail.write((db) => {
    const insert = db.prepare('INSERT INTO items(n, label) VALUES (?, ?)');
    for (let i = 0; i < Number(rows); i++) insert.run(i, `row-${i}`);
  });
  const seconds = (performance.now() - t) / 1000;
  await trail.close();
  print({ path, seconds, peakRssMiB: peakMiB() });
} else {
  throw new Error(`unknown mode ${mode}`);
}
clearInterval(sampler);
