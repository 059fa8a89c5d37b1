// openTrail walks the journal directory to narrow permissions; other processes create and rename the lock's
// spare and queue directories meanwhile. A directory that vanishes mid-walk must not fail the open (found
// by the replica workload test: IO_ERROR "list .../lock.spare-…: ENOENT" from a writer's openTrail).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';

const CHURN = `
const { mkdirSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const dir = process.argv[1];
console.log('ready');
const end = Date.now() + 20000;
for (let i = 0; Date.now() < end; i++) {
  const d = join(dir, 'lock.spare-churn' + (i % 64));
  try { mkdirSync(join(d, 'inner'), { recursive: true }); writeFileSync(join(d, 'inner', 'f'), 'x'); } catch {}
  try { rmSync(d, { recursive: true, force: true }); } catch {}
}`;

describe('journal permissions walk', () => {
  it('ok: directories created and removed by other processes during openTrail do not fail the open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-perm-race-'));
    const path = join(dir, 'app.db');
    await (await openTrail(path)).close();
    const churn = spawn(process.execPath, ['-e', CHURN, `${path}.changes`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => churn.stdout.once('data', resolve));
    let opens = 0;
    try {
      // Bounded in time, not count: each open costs 1-10 ms depending on load; 4 s holds hundreds.
      for (const end = Date.now() + 4_000; Date.now() < end;) {
        const trail = await openTrail(path);
        await trail.close();
        opens += 1;
      }
    } finally {
      churn.kill('SIGKILL');
    }
    expect(opens).toBeGreaterThan(50);
  });
});
