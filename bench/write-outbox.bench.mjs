// The outbox protocol (issue 10 item 1, journal/FORMAT.md §7.1) against raw node:sqlite transactions with
// the same pragmas, measured in the same run, and against the protocol before it (every frame appended and
// fdatasync'd before COMMIT: the direct path, CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX=0). Each row of a table
// is one child process that interleaves raw and admitted writes, so both see the same disk conditions.
//   1. one-row writes, rollback/FULL and WAL/FULL: mean and p99 vs raw (goals ≤ 1.3× and ≤ 1.4×)
//   2. the outbox threshold: per-write cost by frame size, outbox vs direct path
//   3. the 1,000,000-row single write: time, peak RSS, bytes written, beside raw
import { spawnSync } from 'node:child_process';

const CHILD = new URL('./write-outbox-child.mjs', import.meta.url).pathname;
const WRITES = Number(process.env.BENCH_WRITES ?? 400);
const DIRECT = { CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: '0' };

function child(args, env = {}) {
  const run = spawnSync(process.execPath, [CHILD, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`write-outbox-child ${args.join(' ')} failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];
const fmt = (ms) => ms.toFixed(3);

console.log(`| one-row write (100-byte text), ${WRITES} writes | raw mean ms | changetrail mean ms | mean vs raw | raw p99 ms | changetrail p99 ms | p99 vs raw |`);
console.log('|---|---|---|---|---|---|---|');
for (const [mode, label, goal] of [['delete', 'rollback/FULL', '1.3'], ['wal', 'WAL/FULL', '1.4']]) {
  for (const [name, env] of [['outbox (this protocol)', {}], ['direct path (fsync before COMMIT: the protocol before)', DIRECT]]) {
    const { raw, trail } = child(['latency', mode, String(WRITES), '100'], env);
    console.log(`| ${label}, ${name}${env === DIRECT ? '' : ` (goal ≤ ${goal}×)`} | ${fmt(mean(raw))} | ${fmt(mean(trail))} | ${(mean(trail) / mean(raw)).toFixed(2)}× | ${fmt(p99(raw))} | ${fmt(p99(trail))} | ${(p99(trail) / p99(raw)).toFixed(2)}× |`);
  }
}
console.log('');

console.log('| outbox threshold: one write of one row with a payload of | journal | outbox path mean ms | direct path mean ms | outbox / direct |');
console.log('|---|---|---|---|---|');
const THRESHOLD_WRITES = Math.max(40, Math.floor(WRITES / 4));
for (const mode of ['delete', 'wal']) {
  for (const bytes of [4096, 65536, 262144, 1048576]) {
    const outbox = child(['latency', mode, String(THRESHOLD_WRITES), String(bytes)], { CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: String(1 << 30) });
    const direct = child(['latency', mode, String(THRESHOLD_WRITES), String(bytes)], DIRECT);
    // Normalised by each run's own raw mean, so drift between the two processes cancels out.
    const o = mean(outbox.trail) / mean(outbox.raw) * mean(direct.raw);
    const d = mean(direct.trail);
    console.log(`| ${bytes >= 1048576 ? `${bytes >> 20} MiB` : `${bytes >> 10} KiB`} | ${mode} | ${fmt(o)} | ${fmt(d)} | ${(o / d).toFixed(2)}× |`);
  }
}
console.log('');

const ROWS = Number(process.env.BENCH_LARGE_ROWS ?? 1_000_000);
console.log(`| one write of ${ROWS.toLocaleString('en')} rows (rollback/FULL) | ms | peak RSS MiB | segment bytes | database bytes |`);
console.log('|---|---|---|---|---|');
for (const [name, env] of [['raw node:sqlite transaction', { BENCH_RAW: '1' }], ['changetrail (outbox build: frame above the threshold, direct path)', {}], ['changetrail, direct path forced (the protocol before)', DIRECT]]) {
  const r = child(['large', String(ROWS)], env);
  console.log(`| ${name} | ${r.ms.toFixed(0)} | ${r.rssMb.toFixed(0)} | ${r.journalBytes.toLocaleString('en')} | ${r.databaseBytes.toLocaleString('en')} |`);
}
