/**
 * `npm run stress`: the replica workload's 3 writer processes (fixtures/workload-writer.mjs: migrations,
 * undo, an intentional foreign write and its resync, no-op writes), run again and again without a
 * follower. A FOREIGN_WRITE_DETECTED that the intentional foreign write does not explain fails its writer
 * (the fixture says "unexplained-foreign"). Before the no-op-write fix (issue 8 item 3) about 1 run in 3
 * failed this way; CT_WORKLOAD_WRITER_RUNS sets the number of runs (default 30).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';
// @ts-expect-error: a plain ESM fixture without types
import { SCHEMA } from './fixtures/workload-writer.mjs';

const WRITER = new URL('./fixtures/workload-writer.mjs', import.meta.url).pathname;
const RUNS = Number(process.env.CT_WORKLOAD_WRITER_RUNS ?? 30);
const TRANSACTIONS = 56;

function runWriter(path: string, index: number, seed: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, String(index), String(TRANSACTIONS), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('replica workload writers', () => {
  it(`ok: ${RUNS} runs of 3 writers: no FOREIGN_WRITE_DETECTED but the intentional one`, async () => {
    let unexplained = 0;
    for (let run = 0; run < RUNS; run++) {
      const path = join(tempDir('ct-writers-'), 'app.db');
      const db = new DatabaseSync(path);
      db.exec(SCHEMA);
      db.close();
      await (await openTrail(path)).close();
      const writers = await Promise.all([0, 1, 2].map((index) => runWriter(path, index, 0x5eed + run)));
      for (const writer of writers) {
        if (writer.output.includes('unexplained-foreign')) unexplained += 1;
        expect(writer.code, `run ${run}: ${writer.output.split('\n').filter((line) => !line.startsWith('ack')).join('\n')}`).toBe(0);
      }
    }
    expect(unexplained).toBe(0);
  });
});
