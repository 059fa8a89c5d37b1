/**
 * Replicas on other machines as users run them: real writer processes on the primary, `changetrail ship
 * --follow` and `changetrail replicate nats://… --follow` processes, a real nats-server (and a 3-node
 * cluster) — and the faults of the issue, each ending with replicas equal to the primary table for table
 * and the stream holding every entry exactly once (message n is entry n: no duplicate, no gap):
 * the server SIGKILLed and restarted, the shipper SIGKILLed after a publish and before its bookkeeping, a
 * follower SIGKILLed mid-apply, connections cut and restored by a TCP proxy, a second shipper refused, and
 * a cluster node SIGKILLed while shipping.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { readCommittedHead } from '../../src/journal/journal.js';
import { cli, jsonError } from '../cli/run-cli.js';
import { tempDir } from '../helpers/db.js';
import { expectReplicaEquals } from '../replica/helpers.js';
// @ts-expect-error: a plain ESM fixture without types
import { SCHEMA } from '../replica/fixtures/workload-writer.mjs';
import { startNatsCluster, startNatsServer, type NatsServer } from './nats-server.js';
import { appliedSeq, diagnosis, killAll, manifestShipped, runWriter, startCli, startTcpProxy, streamState, waitUntil, type CliProcess } from './processes.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  killAll();
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

async function workloadPrimary(): Promise<{ path: string; dir: string }> {
  const dir = tempDir('ct-nats-e2e-');
  const path = join(dir, 'app.db');
  const db = new DatabaseSync(path);
  db.exec(SCHEMA as string);
  db.close();
  await (await openTrail(path)).close();
  return { path, dir };
}

function writers(path: string, transactions: number, seed: number): Promise<void> {
  return Promise.all([0, 1, 2].map((index) => runWriter(path, index, transactions, seed))).then((runs) => {
    for (const run of runs) expect(run.code, run.output).toBe(0);
  });
}

/** Waits until the shipper made the stream and uploaded the manifest. */
async function streamReady(servers: string | string[], name = 'app'): Promise<void> {
  await waitUntil(() => manifestShipped(servers, name), 30_000, () => `stream ${name}`);
}

/** Waits until every replica applied the primary's head; a timeout shows the stream and every process's output. */
async function caughtUp(path: string, replicas: string[], nodes: readonly NatsServer[], servers: string | string[], processes: Record<string, CliProcess>): Promise<number> {
  const head = readCommittedHead(path).seq;
  await waitUntil(() => replicas.every((replica) => appliedSeq(replica) === head), 60_000,
    async () => `replicas at ${replicas.map(appliedSeq).join(', ')} of ${head}\n${await diagnosis(servers, 'app', processes, nodes)}`);
  // CT_NATS_TRACE=1 shows what the processes reported in a passing run too (reconnects, resumes, retries).
  if (process.env.CT_NATS_TRACE === '1') console.log(await diagnosis(servers, 'app', processes, nodes));
  return head;
}

async function stopAll(processes: CliProcess[]): Promise<void> {
  for (const p of processes) p.child.kill('SIGTERM');
  for (const p of processes) {
    const exit = await p.exited;
    expect(exit.code, p.output()).toBe(0);
  }
}

describe('ship and replicate over NATS, as processes', () => {
  it('ok: 3 writers, ship --follow and two remote followers end equal; a second shipper is refused; no duplicate, no gap', async () => {
    const server = await startNatsServer();
    cleanup.push(() => server.stop());
    const { path, dir } = await workloadPrimary();
    const address = `${server.url}/app`;
    const shipper = startCli(['ship', path, address, '--follow']);
    await streamReady(server.url);
    const replicas = [join(dir, 'r1.db'), join(dir, 'r2.db')];
    const followers = replicas.map((replica) => startCli(['replicate', address, replica, '--follow']));
    const second = cli(['ship', path, address, '--json']);
    expect(second.code).toBe(1);
    expect(jsonError(second)).toMatchObject({ code: 'NATS_STREAM_FENCED', details: { reason: 'another shipper is active' } });
    await writers(path, 30, 0x5eed);
    const head = await caughtUp(path, replicas, [server], server.url, { shipper, follower1: followers[0]!, follower2: followers[1]! });
    await stopAll([shipper, ...followers]);
    for (const replica of replicas) expectReplicaEquals(path, replica);
    expect(await streamState(server.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
  });

  it('ok: the server SIGKILLed and restarted mid-stream, the shipper SIGKILLed after a publish before its bookkeeping', async () => {
    const server = await startNatsServer();
    cleanup.push(() => server.stop());
    const { path, dir } = await workloadPrimary();
    const address = `${server.url}/app`;
    const killed = startCli(['ship', path, address, '--follow'], { CHANGETRAIL_CRASH_AT: 'ship-after-publish:25' });
    await streamReady(server.url);
    const replica = join(dir, 'r.db');
    const follower = startCli(['replicate', address, replica, '--follow', '--json']);
    const writing = writers(path, 30, 0x0b5e55ed);
    expect((await killed.exited).signal).toBe('SIGKILL');
    const shipper = startCli(['ship', path, address, '--follow']);
    // Mid-stream: the new shipper has resumed (a loaded machine takes seconds to start it) and the follower applies.
    await waitUntil(() => shipper.output().includes('(Ctrl-C stops)') && appliedSeq(replica) >= 30, 30_000,
      () => `replica at ${appliedSeq(replica)}\n${follower.output()}\n${shipper.output()}`);
    await server.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    await server.restart();
    await writing;
    const head = await caughtUp(path, [replica], [server], server.url, { 'killed shipper': killed, shipper, follower });
    await stopAll([shipper, follower]);
    expectReplicaEquals(path, replica);
    expect(await streamState(server.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
    // What changed is said, not silent: the shipper's human lines, the follower's NDJSON events on stderr.
    expect(shipper.output()).toMatch(/^ship: the stream holds entry [1-9]\d* .*\(start\)$/m);
    expect(shipper.output()).toMatch(/^ship: lost the connection to 127\.0\.0\.1:\d+; reconnecting$/m);
    const events = follower.output().split('\n').filter((line) => line.startsWith('{"command":"replicate"')).map((line) => JSON.parse(line) as { kind: string });
    expect(events.map((event) => event.kind)).toEqual(expect.arrayContaining(['consumer', 'disconnected', 'reconnected']));
  });

  it('ok: a follower SIGKILLed mid-apply and connections cut and restored by a TCP proxy', async () => {
    const server = await startNatsServer();
    cleanup.push(() => server.stop());
    const proxy = await startTcpProxy(server.port);
    cleanup.push(() => proxy.close());
    const { path, dir } = await workloadPrimary();
    const shipper = startCli(['ship', path, `${proxy.url}/app`, '--follow']);
    await streamReady(server.url);
    const replica = join(dir, 'r.db');
    const killed = startCli(['replicate', `${proxy.url}/app`, replica, '--follow'], { CHANGETRAIL_CRASH_AT: 'replica-after-begin:4' });
    const writing = writers(path, 30, 0xc0ffee);
    expect((await killed.exited).signal).toBe('SIGKILL');
    const follower = startCli(['replicate', `${proxy.url}/app`, replica, '--follow']);
    await waitUntil(() => appliedSeq(replica) >= 20, 30_000, () => `replica at ${appliedSeq(replica)}\n${follower.output()}`);
    proxy.cut();
    await new Promise((r) => setTimeout(r, 1_500));
    proxy.restore();
    await writing;
    const head = await caughtUp(path, [replica], [server], server.url, { shipper, 'killed follower': killed, follower });
    await stopAll([shipper, follower]);
    expectReplicaEquals(path, replica);
    expect(await streamState(server.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
  });

  it('ok: a 3-node cluster (stream replicas = 3) with its JetStream meta leader SIGKILLed while shipping', async () => {
    const cluster = await startNatsCluster(3);
    cleanup.push(() => cluster.stop());
    const { path, dir } = await workloadPrimary();
    const [first, ...others] = cluster.urls as [string, ...string[]];
    const servers = others.flatMap((url) => ['--server', url]);
    const shipper = startCli(['ship', path, `${first}/app`, ...servers, '--replicas', '3', '--follow']);
    await streamReady(cluster.urls);
    const replica = join(dir, 'r.db');
    const follower = startCli(['replicate', `${others[0]}/app`, replica, '--server', first, '--server', others[1]!, '--follow']);
    const writing = writers(path, 30, 0xc1a55);
    await waitUntil(() => appliedSeq(replica) >= 20, 30_000, () => `replica at ${appliedSeq(replica)}\n${follower.output()}\n${shipper.output()}`);
    // The node whose loss hurts most (it failed so once in a clean-clone CI): the meta leader, which places
    // new consumers; the stream's leader too when it is the same node.
    const victim = await cluster.metaLeader();
    const streamLeader = await cluster.streamLeader('app').catch(() => -1);
    await cluster.nodes[victim]!.stop('SIGKILL');
    const survivors = cluster.urls.filter((_, index) => index !== victim);
    await writing;
    const head = await caughtUp(path, [replica], cluster.nodes, survivors, { shipper, follower });
    if (process.env.CT_NATS_TRACE === '1') console.log(`killed n${victim} (meta leader; the stream's leader was n${streamLeader})`);
    await stopAll([shipper, follower]);
    expectReplicaEquals(path, replica);
    expect(await streamState(survivors, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
  });
});
