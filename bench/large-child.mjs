import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const [mode, rowsText] = process.argv.slice(2);
const rows = Number(rowsText);
const path = join(mkdtempSync(join(tmpdir(), 'ct-large-')), 'large.db');
const setup = new DatabaseSync(path);
setup.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, label TEXT NOT NULL)');
setup.close();
let peak = process.memoryUsage().rss;
const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
const insert = (db) => {
  const statement = db.prepare('INSERT INTO big (n, label) VALUES (?, ?)');
  for (let i = 0; i < rows; i++) statement.run(i, `row-${i}`);
  peak = Math.max(peak, process.memoryUsage().rss);
};
const update = (db) => {
  db.exec('UPDATE big SET n = n + 1');
  peak = Math.max(peak, process.memoryUsage().rss);
};
const journalBytes = (dir) => readdirSync(dir).filter((f) => f.endsWith('.seg')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
const result = {};
if (mode === 'raw') {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL');
  for (const [name, body] of [['insertS', insert], ['updateS', update]]) {
    const t = performance.now();
    db.exec('BEGIN IMMEDIATE');
    body(db);
    db.exec('COMMIT');
    result[name] = (performance.now() - t) / 1000;
  }
  db.close();
} else {
  const trail = await openTrail(path);
  let before = journalBytes(trail.journalDir);
  for (const [name, body] of [['insertS', insert], ['updateS', update]]) {
    const t = performance.now();
    const entry = await trail.write(body);
    result[name] = (performance.now() - t) / 1000;
    const after = journalBytes(trail.journalDir);
    result[name === 'insertS' ? 'insertBytesPerRow' : 'updateBytesPerRow'] = (after - before) / rows;
    before = after;
    if (entry.tables[0][name === 'insertS' ? 'inserts' : 'updates'] !== rows) throw new Error('row count mismatch');
  }
  await trail.close();
}
clearInterval(sample);
result.peakRssMiB = Math.round(peak / 1024 / 1024);
process.stdout.write(JSON.stringify(result) + '\n');
