// One measurement of bench/export.bench.mjs in its own process (so that peak RSS is its own).
//   build <entries> <rowsPerEntry>      → { dir, path, seconds, journalBytes }
//   export <db> <format> <each|net>     → { entries, bytes, seconds, peakRssMiB }
//   restore <db> | replay <db>          → { seconds, peakRssMiB }
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail, exportChanges, restoreTo } from '../dist/index.js';

const [mode, ...args] = process.argv.slice(2);
// The journals live on tmpfs when there is one: building 100,000 admitted writes on a disk costs 100,000
// fsync pairs, which measures the disk, not the export. BENCH_EXPORT_DIR overrides.
const scratch = process.env.BENCH_EXPORT_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);
const out = (value) => process.stdout.write(JSON.stringify(value));

if (mode === 'build') {
  const [entries, rows] = args.map(Number);
  const dir = mkdtempSync(join(scratch, 'ct-bench-export-'));
  const path = join(dir, 'app.db');
  const setup = new DatabaseSync(path);
  setup.exec('CREATE TABLE items(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, qty INTEGER, price REAL, note TEXT)');
  setup.close();
  const started = performance.now();
  const trail = await openTrail(path, { lock: { idleReleaseMs: 60_000 } });
  let id = 0;
  for (let entry = 0; entry < entries; entry++) {
    await trail.write((db) => {
      const insert = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?)');
      for (let row = 0; row < rows; row++) {
        id += 1;
        insert.run(id, `owner-${id % 97}`, id * 7, id / 3, `note ${id}`);
      }
      if (entry % 4 === 3) db.prepare('UPDATE items SET qty = qty + 1 WHERE id = ?').run(Math.max(1, id - rows));
    });
  }
  await trail.close();
  const journalBytes = readdirSync(`${path}.changes`).reduce((size, name) => size + statSync(join(`${path}.changes`, name)).size, 0);
  out({ dir, path, seconds: (performance.now() - started) / 1000, journalBytes });
} else if (mode === 'export') {
  const [path, format, each] = args;
  const started = performance.now();
  const stream = exportChanges(path, { since: 0, format, each: each === 'each' });
  let bytes = 0;
  for await (const chunk of stream) bytes += chunk.length;
  out({ entries: stream.until.position.seq, bytes, seconds: (performance.now() - started) / 1000, peakRssMiB: peakRssMiB() });
} else if (mode === 'restore') {
  const [path] = args;
  const at = await headSeq(path);
  const started = performance.now();
  const dir = mkdtempSync(join(scratch, 'ct-bench-restore-'));
  await restoreTo(path, join(dir, 'out.db'), { at });
  out({ seconds: (performance.now() - started) / 1000, peakRssMiB: peakRssMiB() });
  rmSync(dir, { recursive: true, force: true });
} else if (mode === 'replay') {
  const [path] = args;
  const changesets = [];
  const trail = await openTrail(path);
  for await (const entry of trail.entries()) changesets.push(entry.changeset);
  await trail.close();
  const dir = mkdtempSync(join(scratch, 'ct-bench-replay-'));
  const target = join(dir, 'out.db');
  const started = performance.now();
  copyFileSync(join(`${path}.changes`, 'genesis.db'), target);
  const db = new DatabaseSync(target);
  db.exec('PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF');
  for (const changeset of changesets) db.applyChangeset(changeset);
  db.close();
  out({ seconds: (performance.now() - started) / 1000, peakRssMiB: peakRssMiB() });
  rmSync(dir, { recursive: true, force: true });
}

async function headSeq(path) {
  const trail = await openTrail(path);
  try {
    return (await trail.status()).headSeq;
  } finally {
    await trail.close();
  }
}
