/**
 * A follower whose server goes silent with its connection up (a loopback proxy holds every byte), at the
 * moments a degraded cluster left a follower waiting forever: while it downloads a resync snapshot from
 * the Object Store, and while it lists the bucket's snapshots. Every NATS await has a deadline, so the
 * follower reports NATS_UNAVAILABLE retries (never silent) and catches up once the server answers again.
 * And a follower whose wake-up hints are all lost still follows, by its periodic refresh.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, natsSource, openReplica, type NatsEvent } from '../../src/index.js';
import { expectReplicaEquals } from '../replica/helpers.js';
import { startTcpProxy, waitUntil } from './processes.js';
import { foreignWriteAndResync, natsBed, writeSome } from './setup.js';

const { server, primary, ship, replica: replicaOf, after } = natsBed();

describe('natsSource when answers or hints do not come', () => {
  it.each([
    // The chunks of an object arrive as messages of the bucket's stream on its C(hunk) subjects, the
    // listing's as messages on its M(eta) subjects (a push consumer each).
    ['the download of a resync snapshot', /MSG \$O\.app-files\.C\./, /^read app-files\/snapshot-\d+\.db /],
    // A failed listing keeps the last list (the source tells it as a retry event and lists again later).
    ['the listing of snapshots', /MSG \$O\.app-files\.M\./, /^list snapshots /],
  ])('ok: silent during %s: NATS_UNAVAILABLE retried, then caught up', async (_moment, pattern, operation) => {
    const s = await server();
    const proxy = await startTcpProxy(s.port);
    after(() => proxy.close());
    const p = await primary();
    await writeSome(p, 5);
    await ship(p.path, s, { follow: true });
    const retries: string[] = [];
    const onEvent = (event: NatsEvent): void => {
      if (event.kind === 'retry' && event.code === 'NATS_UNAVAILABLE') retries.push(event.reason);
    };
    const replica = await replicaOf(join(p.dir, 'remote.db'), proxy.url, { timeoutMs: 1_000, onEvent });
    replica.on('retry', (error) => {
      if (ChangetrailError.is(error, 'NATS_UNAVAILABLE')) retries.push(error.message);
    });
    const stop = new AbortController();
    const following = replica.follow({ signal: stop.signal });
    await waitUntil(() => replica.position.seq === 5, 20_000, () => `the replica at ${replica.position.seq} of 5`);

    proxy.freezeWhenServerSends(pattern);
    await foreignWriteAndResync(p);
    const head = await writeSome(p, 3, 100);
    const retried = (): boolean => retries.some((reason) => operation.test(reason));
    await waitUntil(() => proxy.frozen() && retried(), 30_000,
      () => `a NATS_UNAVAILABLE retry of ${operation} (frozen: ${proxy.frozen()}; retries: ${retries.join('; ')})`);

    proxy.thaw();
    await waitUntil(() => replica.position.seq === head, 30_000, () => `the replica at ${replica.position.seq} of ${head}`);
    stop.abort();
    await following;
    expectReplicaEquals(p.path, replica.path);
    expect(replica.status()).toMatchObject({ appliedSeq: head });
  });

  it('ok: a follower that gets no wake-up at all (every hint lost) still follows, by its periodic refresh', async () => {
    const s = await server();
    const p = await primary();
    await writeSome(p, 3);
    await ship(p.path, s, { follow: true });
    // Fault injection: the core subscription's hints never arrive (as when a reconnect lost it).
    const source = natsSource({ servers: s.url, name: 'app' });
    after(() => source.close());
    let watched = 0;
    source.watch = async () => {
      watched += 1;
      return { close: async () => undefined };
    };
    const replica = await openReplica(join(p.dir, 'remote.db'), { source, pollIntervalMs: 50 });
    after(() => replica.close());
    const stop = new AbortController();
    const following = replica.follow({ signal: stop.signal });
    const head = await writeSome(p, 5, 10);
    await replica.waitFor(head, { timeoutMs: 20_000 });
    stop.abort();
    await following;
    expect(watched).toBe(1);
    expectReplicaEquals(p.path, replica.path);
  });
});
