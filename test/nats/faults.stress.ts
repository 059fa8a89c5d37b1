/**
 * The long loop behind test/nats/faults.test.ts (npm run stress): while 3 writer processes run, the
 * nats-server, the shipper and the follower are SIGKILLed at random moments and restarted, CT_NATS_KILLS
 * times in all (default 60); at the end the replica equals the primary table for table and the stream
 * holds every entry exactly once.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { readCommittedHead } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/db.js';
import { expectReplicaEquals } from '../replica/helpers.js';
// @ts-expect-error: a plain ESM fixture without types
import { SCHEMA } from '../replica/fixtures/workload-writer.mjs';
import { startNatsServer } from './nats-server.js';
import { appliedSeq, killAll, runWriter, startCli, streamState, waitUntil, type CliProcess } from './processes.js';

const KILLS = Number(process.env.CT_NATS_KILLS ?? 60);

afterEach(() => killAll());

describe('ship and replicate under random kills', () => {
  it(`ok: ${KILLS} random SIGKILLs of the server, the shipper and the follower while 3 writers run`, async () => {
    const server = await startNatsServer();
    const dir = tempDir('ct-nats-stress-');
    const path = join(dir, 'app.db');
    const db = new DatabaseSync(path);
    db.exec(SCHEMA as string);
    db.close();
    await (await openTrail(path)).close();
    const address = `${server.url}/app`;
    const replica = join(dir, 'r.db');
    let shipper: CliProcess = startCli(['ship', path, address, '--follow']);
    await waitUntil(async () => (await streamState(server.url, 'app').catch(() => null)) !== null, 20_000, () => 'stream');
    let follower: CliProcess = startCli(['replicate', address, replica, '--follow']);
    let writing = true;
    // Enough writing to outlast every kill (about 0.5 s apart; a writer commits ~100 transactions a second here).
    const writers = Promise.all([0, 1, 2].map((index) => runWriter(path, index, 40 + KILLS * 12, 0x57e55 + KILLS))).finally(() => {
      writing = false;
    });
    const counts = { server: 0, shipper: 0, follower: 0 };
    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 600));
      const victim = (['server', 'shipper', 'follower'] as const)[Math.floor(Math.random() * 3)]!;
      counts[victim] += 1;
      if (victim === 'server') {
        await server.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, Math.random() * 500));
        await server.restart();
      } else if (victim === 'shipper') {
        shipper.child.kill('SIGKILL');
        await shipper.exited;
        shipper = startCli(['ship', path, address, '--follow']);
      } else {
        follower.child.kill('SIGKILL');
        await follower.exited;
        follower = startCli(['replicate', address, replica, '--follow']);
      }
      if (!writing) break;
    }
    for (const run of await writers) expect(run.code, run.output).toBe(0);
    const head = readCommittedHead(path).seq;
    await waitUntil(() => appliedSeq(replica) === head, 120_000, () => `replica at ${appliedSeq(replica)} of ${head}\n${shipper.output()}\n${follower.output()}`);
    for (const p of [shipper, follower]) p.child.kill('SIGTERM');
    for (const p of [shipper, follower]) expect((await p.exited).code, p.output()).toBe(0);
    expectReplicaEquals(path, replica);
    expect(await streamState(server.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
    console.log(`kills: ${JSON.stringify(counts)} (${counts.server + counts.shipper + counts.follower} of ${KILLS} while writing), ${head} entries`);
    await server.stop();
  });
});
