// npm run bench -- export: export of 100,000 entries (ndjson, changeset) in MB/s and entries/s with peak
// RSS; restore to the head of a 100,000-entry journal beside a plain replay of the same changesets (goal
// ≥ 0.8×); and the peak RSS of exporting a 1,000,000-row range (goal < 150 MiB). Each measurement runs in
// its own process so peak RSS is its own. The journals are built once per run in a temp directory.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ENTRIES = Number(process.env.BENCH_EXPORT_ENTRIES ?? 100_000);
const ROWS_LARGE = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
const child = fileURLToPath(new URL('./export-child.mjs', import.meta.url));

/** V8 flags that cap the heap: peak RSS then shows the live set instead of V8's garbage allowance. */
const CAPPED = ['--max-old-space-size=64', '--max-semi-space-size=2'];

function run(...args) {
  const flags = args[0] === CAPPED ? args.shift() : [];
  const result = spawnSync(process.execPath, [...flags, child, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

const many = run('build', ENTRIES, 1);
const large = run('build', ROWS_LARGE / 1000, 1000);
try {
  const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);
  console.log(`journals: ${ENTRIES.toLocaleString('en-US')} entries of 1 row (built in ${many.seconds.toFixed(1)} s, ${mib(many.journalBytes)} MiB); `
    + `${(ROWS_LARGE / 1000).toLocaleString('en-US')} entries of 1,000 rows (${mib(large.journalBytes)} MiB)\n`);
  console.log('| export | entries | output MiB | s | MB/s (output) | entries/s | peak RSS MiB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [label, path, format, each, capped] of [
    ['ndjson, 100k entries', many.path, 'ndjson', false], ['changeset (net), 100k entries', many.path, 'changeset', false],
    ['sql (net), 100k entries', many.path, 'sql', false],
    ['ndjson, 1M rows', large.path, 'ndjson', false], ['debezium, 1M rows', large.path, 'debezium', false],
    ['sql --each, 1M rows', large.path, 'sql', true], ['changeset (net), 1M rows', large.path, 'changeset', false],
    [`ndjson, 1M rows, heap capped (${CAPPED.join(' ')})`, large.path, 'ndjson', false, true],
    [`sql --each, 1M rows, heap capped`, large.path, 'sql', true, true],
  ]) {
    const r = capped ? run(CAPPED, 'export', path, format, each ? 'each' : 'net') : run('export', path, format, each ? 'each' : 'net');
    console.log(`| ${label} | ${r.entries.toLocaleString('en-US')} | ${mib(r.bytes)} | ${r.seconds.toFixed(2)} | ${(r.bytes / 1e6 / r.seconds).toFixed(1)} | ${Math.round(r.entries / r.seconds).toLocaleString('en-US')} | ${r.peakRssMiB} |`);
  }
  const restore = run('restore', many.path);
  const plain = run('replay', many.path);
  console.log('\n| restore to head, 100k entries | s | entries/s | peak RSS MiB |');
  console.log('|---|---|---|---|');
  console.log(`| restoreTo (verified, exact, integrity_check) | ${restore.seconds.toFixed(2)} | ${Math.round(ENTRIES / restore.seconds).toLocaleString('en-US')} | ${restore.peakRssMiB} |`);
  console.log(`| plain replay: applyChangeset per entry, same pragmas | ${plain.seconds.toFixed(2)} | ${Math.round(ENTRIES / plain.seconds).toLocaleString('en-US')} | ${plain.peakRssMiB} |`);
  console.log(`| ratio (plain s / restore s; goal ≥ 0.8) | ${(plain.seconds / restore.seconds).toFixed(2)}× | | |`);
} finally {
  rmSync(many.dir, { recursive: true, force: true });
  rmSync(large.dir, { recursive: true, force: true });
}
