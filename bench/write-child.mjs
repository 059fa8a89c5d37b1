// One benchmark writer process of bench/write.bench.mjs's multi-process rows, kept for the whole row so raw
// and changetrail rounds can alternate every few hundred milliseconds (the shared disk's speed drifts within
// seconds; a process start costs more than a round). `write-child.mjs <rawDb> <trailDb> <inFlight>`, then
// over IPC: {round, mode: 'raw'|'trail', startAt, durationMs} → {round, count}; {close: true} → exit.
// Raw rounds are single-row BEGIN IMMEDIATE transactions with a busy timeout; trail rounds keep `inFlight`
// writes in flight (group commit above 1).
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';

const [rawPath, trailPath, inFlightArg] = process.argv.slice(2);
const inFlight = Number(inFlightArg ?? 1);
const payload = 'x'.repeat(100);
const raw = new DatabaseSync(rawPath, { timeout: 60_000 });
raw.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL');
const insert = raw.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)');
const trail = await openTrail(trailPath, { lock: { timeoutMs: 60_000 } });
const body = (db) => db.prepare('INSERT INTO bench (pid, payload) VALUES (?, ?)').run(process.pid, payload);

const sleepUntil = (t) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now())));

async function rawRound(end) {
  let count = 0;
  while (Date.now() < end) {
    raw.exec('BEGIN IMMEDIATE');
    insert.run(process.pid, payload);
    raw.exec('COMMIT');
    count += 1;
  }
  return count;
}

async function trailRound(end) {
  let count = 0;
  const lane = async () => {
    while (Date.now() < end) {
      await trail.write(body);
      count += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return count;
}

process.on('message', async (message) => {
  if (message.close) {
    raw.close();
    await trail.close();
    process.disconnect();
    return;
  }
  await sleepUntil(message.startAt);
  const end = message.startAt + message.durationMs;
  const count = message.mode === 'raw' ? await rawRound(end) : await trailRound(end);
  process.send({ round: message.round, count });
});
process.send({ ready: true });
