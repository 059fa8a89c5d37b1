// One optimistic-write benchmark agent: `optimistic-child.mjs <optimistic|locked|hot> <db> <agentId> <durationMs> <startAtEpochMs> <thinkMs>`.
// optimistic/locked: read 3 shared rows and the agent's own row, think, write the own row (optimistic: think
// awaited outside any transaction; locked: think inside `write`, holding the lock). hot: every agent
// increments one shared counter through optimisticWrite. Prints JSON counts.
import { openTrail } from '../dist/index.js';

const [mode, path, agentId, durationMs, startAt, thinkMs] = process.argv.slice(2);
const id = Number(agentId);
const think = Number(thinkMs);
const trail = await openTrail(path, { lock: { timeoutMs: 120_000 } });
const waitUntil = async (t) => { while (Date.now() < t) await new Promise((r) => setTimeout(r, 1)); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const blockFor = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); // no CPU, no event loop
const readShared = (db) => db.prepare('SELECT sum(v) AS s FROM shared WHERE id IN (1, 2, 3)').get().s;
const counts = { commits: 0, attempts: 0, gaveUp: 0 };
await waitUntil(Number(startAt));
const end = Date.now() + Number(durationMs);
while (Date.now() < end) {
  if (mode === 'locked') {
    await trail.write((db) => {
      const s = readShared(db);
      const n = db.prepare('SELECT n FROM agent WHERE id = ?').get(id).n;
      blockFor(think);
      db.prepare('UPDATE agent SET n = ? WHERE id = ?').run(n + 1 + 0 * s, id);
    });
    counts.commits += 1;
    counts.attempts += 1;
    continue;
  }
  const table = mode === 'hot' ? 'hot' : 'agent';
  const row = mode === 'hot' ? 1 : id;
  try {
    const done = await trail.optimisticWrite(
      (db) => {
        const s = readShared(db);
        const n = db.prepare(`SELECT n FROM ${table} WHERE id = ?`).get(row).n;
        return { reads: [1, 2, 3].map((key) => ({ table: 'shared', key })).concat([{ table, key: row }]), value: sleep(think).then(() => n + 1 + 0 * s) };
      },
      (db, next) => db.prepare(`UPDATE ${table} SET n = ? WHERE id = ?`).run(next, row),
      { retries: 1_000, backoffMs: 2 },
    );
    counts.commits += 1;
    counts.attempts += done.attempts;
  } catch (error) {
    if (error?.code !== 'OPTIMISTIC_CONFLICT') throw error;
    counts.gaveUp += 1;
    counts.attempts += error.details.attempts;
  }
}
await trail.close();
process.stdout.write(JSON.stringify(counts));
