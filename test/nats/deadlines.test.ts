/**
 * A follower whose server goes silent with its connection up (a loopback proxy holds every byte), at the
 * moments a degraded cluster left a follower waiting forever: while it downloads a resync snapshot from
 * the Object Store, and while it lists the bucket's snapshots. Every NATS await has a deadline, so the
 * follower reports NATS_UNAVAILABLE retries (never silent) and catches up once the server answers again.
 */
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, natsSource, openReplica, shipJournal, type NatsEvent } from '../../src/index.js';
import { expectReplicaEquals, tempPrimary, type Primary } from '../replica/helpers.js';
import { startNatsServer } from './nats-server.js';
import { startTcpProxy, waitUntil } from './processes.js';

const SCHEMA = 'CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

async function writeSome(p: Primary, count: number, from: number): Promise<number> {
  let seq = 0;
  for (let i = from; i < from + count; i++) seq = (await p.trail.write((db) => void db.prepare('INSERT INTO users(id, name) VALUES (?, ?)').run(i, `user ${i}`)))!.seq;
  return seq;
}

describe('natsSource against a server gone silent', () => {
  it.each([
    // The chunks of an object arrive as messages of the bucket's stream on its C(hunk) subjects, the
    // listing's as messages on its M(eta) subjects (a push consumer each).
    ['the download of a resync snapshot', /MSG \$O\.app-files\.C\./, /^read app-files\/snapshot-\d+\.db /],
    // A failed listing keeps the last list (the source tells it as a retry event and lists again later).
    ['the listing of snapshots', /MSG \$O\.app-files\.M\./, /^list snapshots /],
  ])('ok: silent during %s: NATS_UNAVAILABLE retried, then caught up', async (_moment, pattern, operation) => {
    const server = await startNatsServer();
    cleanup.push(() => server.stop());
    const proxy = await startTcpProxy(server.port);
    cleanup.push(() => proxy.close());
    const p = await tempPrimary(SCHEMA);
    cleanup.push(() => p.trail.close());
    await writeSome(p, 5, 1);
    const shipper = await shipJournal(p.path, { servers: server.url, name: 'app', follow: true });
    cleanup.push(() => shipper.close());
    const retries: string[] = [];
    const onEvent = (event: NatsEvent): void => {
      if (event.kind === 'retry' && event.code === 'NATS_UNAVAILABLE') retries.push(event.reason);
    };
    const replica = await openReplica(join(p.dir, 'remote.db'), { source: natsSource({ servers: proxy.url, name: 'app', timeoutMs: 1_000, onEvent }), pollIntervalMs: 50 });
    cleanup.push(() => replica.close());
    replica.on('retry', (error) => {
      if (ChangetrailError.is(error, 'NATS_UNAVAILABLE')) retries.push(error.message);
    });
    const stop = new AbortController();
    const following = replica.follow({ signal: stop.signal });
    await waitUntil(() => replica.position.seq === 5, 20_000, () => `the replica at ${replica.position.seq} of 5`);

    proxy.freezeWhenServerSends(pattern);
    const db = new DatabaseSync(p.path);
    db.exec(`INSERT INTO users(id, name) VALUES (9999, 'foreign')`);
    db.close();
    await p.trail.resync({ message: 'after a foreign write' });
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
});
