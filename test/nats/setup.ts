/**
 * What the in-process NATS tests (ship.test.ts, deadlines.test.ts) set up: a server per test, primaries
 * over one schema, shipping, replicas reading the stream, a client of the test's own for forging and
 * inspecting. Everything is closed or stopped after its test.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { afterEach } from 'vitest';
import { natsSource, openReplica, shipJournal, type ErrorDetails, type NatsSourceOptions, type Replica, type Shipper, type ShipStatus } from '../../src/index.js';
import { primariesAndReplicas, type Primary } from '../replica/helpers.js';
import { startNatsServer, type NatsServer } from './nats-server.js';

export const SCHEMA = `CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;`;

/** Writes `count` entries (users `from`…, a few kv keys); returns the last seq. */
export async function writeSome(p: Primary, count: number, from = 1): Promise<number> {
  let seq = 0;
  for (let i = from; i < from + count; i++) {
    const entry = await p.trail.write((db) => {
      db.prepare('INSERT OR REPLACE INTO users(id, name) VALUES (?, ?)').run(i, `user ${i}`);
      db.prepare('INSERT OR REPLACE INTO kv VALUES (?, ?)').run(`k${i % 7}`, i);
    });
    seq = entry!.seq;
  }
  return seq;
}

/** A foreign write (sqlite3-style, outside changetrail) followed by trail.resync(): a resync entry with a snapshot. */
export async function foreignWriteAndResync(p: Primary): Promise<void> {
  const db = new DatabaseSync(p.path);
  db.exec(`INSERT INTO users(id, name) VALUES (9999, 'foreign')`);
  db.close();
  await p.trail.resync({ message: 'after a foreign write' });
}

export interface NatsBed {
  /** A server of its own (`extraConfig`: lines of its configuration file). */
  server(extraConfig?: string): Promise<NatsServer>;
  primary(): Promise<Primary>;
  /** Ships `path` to stream `name` (default app) of `s`; `follow: false` resolves `done` at the head. */
  ship(path: string, s: NatsServer, options?: { name?: string; follow?: boolean }): Promise<Shipper>;
  /** A server and a primary with `count` writes, shipped (the shipper done). */
  shipped(count: number): Promise<{ s: NatsServer; p: Primary; status: ShipStatus }>;
  /** A replica at `path` reading stream app of `servers` (50 ms poll; `options` for its natsSource). */
  replica(path: string, servers: string, options?: Partial<NatsSourceOptions>): Promise<Replica>;
  /** The replica `<p.dir>/<file>` caught up with what `s` holds. */
  synced(p: Primary, s: NatsServer, file?: string): Promise<Replica>;
  /** A replica opened again at `path` and synced, with what it said when it rebased ('stranded'). */
  resynced(path: string, s: NatsServer): Promise<{ replica: Replica; stranded: ErrorDetails['HISTORY_PRUNED'][] }>;
  /** The test's own client (forging, inspecting, changing stream limits). */
  client(s: NatsServer): Promise<{ nc: NatsConnection; jsm: JetStreamManager; js: JetStreamClient }>;
  /** Runs `step` after the test (reverse order of registration). */
  after(step: () => Promise<unknown> | unknown): void;
}

/** The {@link NatsBed} of a test file (call once, at its top). */
export function natsBed(): NatsBed {
  const steps: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await Promise.resolve().then(step).catch(() => undefined);
  });
  const { primary } = primariesAndReplicas(SCHEMA);
  const bed: NatsBed = {
    after: (step) => void steps.push(step),
    async server(extraConfig) {
      const s = await startNatsServer(extraConfig === undefined ? {} : { extraConfig });
      steps.push(() => s.stop());
      return s;
    },
    primary,
    async ship(path, s, options = {}) {
      const shipper = await shipJournal(path, { servers: s.url, name: options.name ?? 'app', follow: options.follow ?? false });
      steps.push(() => shipper.close());
      return shipper;
    },
    async shipped(count) {
      const s = await bed.server();
      const p = await primary();
      await writeSome(p, count);
      return { s, p, status: await (await bed.ship(p.path, s)).done };
    },
    async replica(path, servers, options = {}) {
      // A source given to openReplica stays the caller's: closed after the replica.
      const source = natsSource({ servers, name: 'app', ...options });
      steps.push(() => source.close());
      const r = await openReplica(path, { source, pollIntervalMs: 50 });
      steps.push(() => r.close());
      return r;
    },
    async synced(p, s, file = 'remote.db') {
      const r = await bed.replica(join(p.dir, file), s.url);
      await r.sync();
      return r;
    },
    async resynced(path, s) {
      const replica = await bed.replica(path, s.url);
      const stranded: ErrorDetails['HISTORY_PRUNED'][] = [];
      replica.on('stranded', (error) => stranded.push(error.details));
      await replica.sync();
      return { replica, stranded };
    },
    async client(s) {
      const nc = await connect({ servers: s.url });
      steps.push(() => nc.close());
      return { nc, jsm: await jetstreamManager(nc), js: jetstream(nc) };
    },
  };
  return bed;
}
