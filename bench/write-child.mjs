// One benchmark writer process: `write-child.mjs <raw|trail> <db> <durationMs> <startAtEpochMs> [inFlight]`.
// Runs single-row insert transactions until the deadline and prints how many committed. With inFlight > 1
// the trail keeps that many writes in flight (group commit); raw always writes one at a time.
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const [mode, path, durationMs, startAt, inFlightArg] = process.argv.slice(2);
const inFlight = Number(inFlightArg ?? 1);
const payload = 'x'.repeat(100);
let count = 0;
const waitUntil = async (t) => { while (Date.now() < t) await new Promise((r) => setTimeout(r, 1)); };

if (mode === 'raw') {
  const db = new DatabaseSync(path, { timeout: 60_000 });
  db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL');
  const insert = db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
  await waitUntil(Number(startAt));
  const end = Date.now() + Number(durationMs);
  while (Date.now() < end) {
    db.exec('BEGIN IMMEDIATE');
    insert.run(process.pid, payload);
    db.exec('COMMIT');
    count += 1;
  }
  db.close();
} else {
  const trail = await openTrail(path, { lock: { timeoutMs: 60_000 } });
  await waitUntil(Number(startAt));
  const end = Date.now() + Number(durationMs);
  const body = (db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(process.pid, payload);
  const lane = async () => {
    while (Date.now() < end) {
      await trail.write(body);
      count += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  await trail.close();
}
process.stdout.write(JSON.stringify({ count }) + '\n');
