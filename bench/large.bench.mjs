// One admitted write touching 1,000,000 rows (insert, then update), beside the same transaction without
// changetrail, in the same run: time and peak RSS (the session keeps each touched row's original in memory,
// and node:sqlite materialises the whole changeset).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROWS = Number(process.env.BENCH_LARGE_ROWS ?? 1_000_000);
const child = fileURLToPath(new URL('./large-child.mjs', import.meta.url));
const run = (mode) => {
  const result = spawnSync(process.execPath, ['--max-old-space-size=4096', child, mode, String(ROWS)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${mode}: ${result.stderr}`);
  return JSON.parse(result.stdout);
};
const raw = run('raw');
const trail = run('trail');
console.log(`| ${ROWS.toLocaleString('en-US')} rows in one transaction | insert s | update s | peak RSS MiB | journal bytes/row (insert, update) |`);
console.log('|---|---|---|---|---|');
console.log(`| raw node:sqlite | ${raw.insertS.toFixed(2)} | ${raw.updateS.toFixed(2)} | ${raw.peakRssMiB} | — |`);
console.log(`| changetrail write | ${trail.insertS.toFixed(2)} | ${trail.updateS.toFixed(2)} | ${trail.peakRssMiB} | ${trail.insertBytesPerRow.toFixed(1)}, ${trail.updateBytesPerRow.toFixed(1)} |`);
console.log(`| ratio | ${(trail.insertS / raw.insertS).toFixed(2)}× | ${(trail.updateS / raw.updateS).toFixed(2)}× | +${trail.peakRssMiB - raw.peakRssMiB} MiB | |`);
