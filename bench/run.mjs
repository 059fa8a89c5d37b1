// npm run bench: runs every bench/*.bench.mjs in order (each prints a markdown table with ratios against
// a baseline measured in the same run). Pass a name filter to run some: npm run bench -- write
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.mjs') && (!filter || f.includes(filter))).sort();
console.log(`# changetrail benchmarks (${new Date().toISOString()}, Node ${process.version}, ${process.platform}/${process.arch})\n`);
let failed = 0;
for (const file of files) {
  console.log(`## ${file}\n`);
  const result = spawnSync(process.execPath, [join(dir, file)], { stdio: 'inherit' });
  if (result.status !== 0) failed += 1;
  console.log('');
}
process.exit(failed === 0 ? 0 : 1);
