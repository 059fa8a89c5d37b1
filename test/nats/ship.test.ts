/**
 * shipJournal and natsSource in one process against a real nats-server: every entry kind arrives and
 * applies, resume after a restart of the shipper, refusals of another history and of a second shipper,
 * frames larger than the max payload through the Object Store, tampered messages refused, and a replica
 * behind the stream's retained history starting over from the newest snapshot.
 */
import { cpSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Objm } from '@nats-io/obj';
import { describe, expect, it } from 'vitest';
import { listFollowers, openTrail, shipJournal, type NatsEvent } from '../../src/index.js';
import { entryHeaders } from '../../src/replica/nats-message.js';
import { decodeEntryBody, encodeEntryBody, hashEntryBody } from '../../src/journal/entry.js';
import { decodeFrame, encodeFrame } from '../../src/journal/frame.js';
import { tempDir } from '../helpers/db.js';
import { rejection } from '../helpers/rejection.js';
import { cli } from '../cli/run-cli.js';
import { digestFile, expectReplicaEquals } from '../replica/helpers.js';
import { streamState } from './processes.js';
import { foreignWriteAndResync, natsBed, writeSome } from './setup.js';

const { server, primary, ship, shipped, replica, synced, resynced, client, after } = natsBed();

describe('shipJournal + natsSource', () => {
  it('ok: ships writes, a migration, an undo and a resync; a remote replica equals the primary', async () => {
    const s = await server();
    const p = await primary();
    await writeSome(p, 20);
    await p.trail.migrate('ALTER TABLE users ADD COLUMN email TEXT');
    const last = await writeSome(p, 5, 21);
    await p.trail.undo(last);
    await foreignWriteAndResync(p);
    const head = await writeSome(p, 5, 30);
    const status = await (await ship(p.path, s)).done;
    expect(status).toMatchObject({ shippedSeq: head, headSeq: head, lagEntries: 0, publishedCount: head, state: 'done' });
    expect(await streamState(s.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
    const r = await replica(join(p.dir, 'remote.db'), s.url);
    expect((await r.sync()).seq).toBe(head);
    expectReplicaEquals(p.path, r.path);
  });

  it('ok: a shipper started again publishes only what the stream lacks; a following replica keeps up', async () => {
    const { s, p } = await shipped(10);
    const r = await replica(join(p.dir, 'remote.db'), s.url);
    const following = r.follow();
    const shipper = await ship(p.path, s, { follow: true });
    const head = await writeSome(p, 15, 11);
    await r.waitFor(head, { timeoutMs: 10_000 });
    // The replica may see an entry before the shipper has processed its ack: wait for the shipper's books.
    for (const deadline = Date.now() + 10_000; shipper.status().shippedSeq < head && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    for (const deadline = Date.now() + 2_000; shipper.status().state !== 'following' && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    expect(shipper.status()).toMatchObject({ shippedSeq: head, publishedCount: 15, state: 'following' });
    expect(await streamState(s.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
    expectReplicaEquals(p.path, r.path);
    await r.close();
    await following;
  });

  it('err: a second shipper while one is active is NATS_STREAM_FENCED', async () => {
    const s = await server();
    const p = await primary();
    await writeSome(p, 3);
    await ship(p.path, s, { follow: true });
    const error = await rejection(shipJournal(p.path, { servers: s.url, name: 'app' }));
    expect(error.code).toBe('NATS_STREAM_FENCED');
    expect(error.details).toMatchObject({ stream: 'app', reason: 'another shipper is active' });
  });

  it('err: another journal, a stale copy ahead of, and a diverged copy of the shipped history are NATS_STREAM_MISMATCH', async () => {
    const s = await server();
    const p = await primary();
    await writeSome(p, 5);
    // A copy of the primary as of entry 5, taken while no write runs.
    const copyDir = tempDir('ct-nats-copy-');
    copyFileSync(p.path, join(copyDir, 'app.db'));
    cpSync(`${p.path}.changes`, join(copyDir, 'app.db.changes'), { recursive: true, filter: (path) => !/[/]lock[^/]*$/.test(path) });
    await writeSome(p, 5, 6);
    await (await ship(p.path, s)).done;

    const other = await primary();
    await writeSome(other, 2);
    const foreign = await rejection(shipJournal(other.path, { servers: s.url, name: 'app' }));
    expect(foreign.code).toBe('NATS_STREAM_MISMATCH');
    expect(foreign.details).toMatchObject({ reason: 'other-journal' });

    const stale = await rejection(shipJournal(join(copyDir, 'app.db'), { servers: s.url, name: 'app' }));
    expect(stale.details).toMatchObject({ reason: 'ahead', seq: 10 });

    const copy = await openTrail(join(copyDir, 'app.db'));
    for (let i = 0; i < 7; i++) await copy.write((db) => void db.prepare('INSERT INTO users(name) VALUES (?)').run(`fork ${i}`));
    await copy.close();
    const diverged = await rejection(shipJournal(join(copyDir, 'app.db'), { servers: s.url, name: 'app' }));
    expect(diverged.details).toMatchObject({ reason: 'diverged', seq: 10 });
    expect(await streamState(s.url, 'app')).toEqual({ messages: 10, first_seq: 1, last_seq: 10 });
  });

  it('ok: an entry larger than the max payload travels through the Object Store', async () => {
    const s = await server('max_payload: 65536');
    const p = await primary();
    await writeSome(p, 2);
    await p.trail.write((db) => void db.prepare('INSERT INTO kv VALUES (?, ?)').run('big', new Uint8Array(300_000).fill(7)));
    const head = await writeSome(p, 2, 3);
    expect((await (await ship(p.path, s)).done).shippedSeq).toBe(head);
    const r = await replica(join(p.dir, 'remote.db'), s.url);
    expect((await r.sync()).seq).toBe(head);
    expectReplicaEquals(p.path, r.path);
  });

  it('err: a message with a flipped byte is JOURNAL_CHECKSUM_MISMATCH; the replica is untouched', async () => {
    const { s, p } = await shipped(4);
    const r = await synced(p, s);
    const before = digestFile(r.path);
    // A forger with write access to the stream appends entry 5 taken from another journal position.
    const { jsm, js } = await client(s);
    const stored = (await jsm.streams.getMessage('app', { seq: 4 }))!;
    const forged = new Uint8Array(stored.data);
    forged[12] = forged[12]! ^ 0xff; // the CRC
    new DataView(forged.buffer).setBigUint64(4, 5n);
    await js.publish('changetrail.app.entries', forged, { msgID: 'ab'.repeat(32), headers: entryHeaders(r.position.journalId, 5, null), expect: { lastSequence: 4 } });
    const crc = await rejection(r.sync());
    expect(crc.code).toBe('JOURNAL_CHECKSUM_MISMATCH');
    expect(r.position.seq).toBe(4);
    expect(digestFile(r.path)).toEqual(before);
  });

  it('err: a well-formed message that does not chain to the entry before it is JOURNAL_CHAIN_BROKEN', async () => {
    const { s, p } = await shipped(4);
    const r = await synced(p, s);
    const { jsm, js } = await client(s);
    const stored = (await jsm.streams.getMessage('app', { seq: 4 }))!;
    const body = decodeEntryBody(decodeFrame(stored.data, 'm', 0).body, 'm', 0);
    const forgedBody = encodeEntryBody({ ...body, seq: 5, prevHash: new Uint8Array(32).fill(1) });
    const hash = Buffer.from(hashEntryBody(forgedBody)).toString('hex');
    await js.publish('changetrail.app.entries', encodeFrame(5, forgedBody), { msgID: hash, headers: entryHeaders(r.position.journalId, 5, null), expect: { lastSequence: 4 } });
    const error = await rejection(r.sync());
    expect(error.code).toBe('JOURNAL_CHAIN_BROKEN');
    expect(error.details).toMatchObject({ seq: 5 });
    expect(r.position.seq).toBe(4);
  });

  it('ok: a replica behind the stream\'s retained history starts over from the newest snapshot and says so', async () => {
    const { s, p } = await shipped(3);
    await (await synced(p, s)).close();
    await writeSome(p, 5, 4);
    await foreignWriteAndResync(p);
    const head = await writeSome(p, 5, 20);
    await (await ship(p.path, s)).done;
    // Retention keeps the last 6 messages: entries 4..8 (which the replica needs) are gone; the resync at 9 is kept.
    const { jsm } = await client(s);
    const config = (await jsm.streams.info('app')).config;
    await jsm.streams.update('app', { ...config, max_msgs: 6 });
    expect((await streamState(s.url, 'app')).first_seq).toBe(head - 5);
    const { replica: again, stranded } = await resynced(join(p.dir, 'remote.db'), s);
    expect(again.position.seq).toBe(head);
    // Told once, with where the stream's history begins; rebased on the resync snapshot at 9.
    expect(stranded).toEqual([{ seq: 4, earliestSeq: 9, baseSeq: 8, checkpointSeq: 9 }]);
    expect(again.status()).toMatchObject({ appliedSeq: head, lagEntries: 0 });
    expectReplicaEquals(p.path, again.path);
  });

  it('ok: the shipper registers the acknowledged position as a retention follower; pruning holds back for it', async () => {
    const { p, status } = await shipped(5);
    expect(status.followerName).toBe('nats-app');
    expect(listFollowers(`${p.path}.changes`, status.journalId)).toEqual([expect.objectContaining({ name: 'nats-app', seq: 5, hash: status.shippedHash })]);
    await writeSome(p, 5, 10);
    await p.trail.checkpoint();
    const pruned = await p.trail.prune({ before: 'checkpoint' });
    // Entries 6.. are not shipped yet: nothing before them goes (there is no checkpoint at or before 5).
    expect(pruned.heldBy).toContainEqual({ kind: 'follower', name: 'nats-app', seq: 5 });
    expect(pruned.base).toBeNull();
  });

  it('ok: a shipper whose unshipped entries were pruned is told (HISTORY_PRUNED) and re-bases the stream on the checkpoint; a remote replica rebases on it', async () => {
    const { s, p } = await shipped(3);
    await (await synced(p, s)).close();
    await writeSome(p, 5, 4);
    await p.trail.checkpoint();
    const head = await writeSome(p, 2, 20);
    // The shipper (at 3) is past the hold limit: entries 4..8 go, history starts at checkpoint 9 (state as of 8).
    expect((await p.trail.prune({ before: 'checkpoint', followers: { entriesMax: 1 } })).base).toEqual({ seq: 8, checkpointSeq: 9 });
    const events: NatsEvent[] = [];
    const shipper = await shipJournal(p.path, { servers: s.url, name: 'app', onEvent: (event) => events.push(event) });
    after(() => shipper.close());
    expect(await shipper.done).toMatchObject({ shippedSeq: head, state: 'done' });
    expect(events).toContainEqual(expect.objectContaining({ kind: 'pruned', code: 'HISTORY_PRUNED', seq: 4, earliestSeq: 9, checkpointSeq: 9 }));
    // Markers stand for 4..8: message n is still entry n.
    expect(await streamState(s.url, 'app')).toEqual({ messages: head, first_seq: 1, last_seq: head });
    const { replica: again, stranded } = await resynced(join(p.dir, 'remote.db'), s);
    expect(again.position.seq).toBe(head);
    expect(stranded).toEqual([{ seq: 4, earliestSeq: 9, baseSeq: 8, checkpointSeq: 9 }]);
    expectReplicaEquals(p.path, again.path);
    // A shipper started again finds the stream complete.
    expect(await (await ship(p.path, s)).done).toMatchObject({ shippedSeq: head, publishedCount: 0 });
  });

  it('ok: checkpoints go to the Object Store; a new replica starts from the newest one its entry describes, never from object metadata', async () => {
    const s = await server();
    const p = await primary();
    await writeSome(p, 3);
    await p.trail.checkpoint();
    const head = await writeSome(p, 2, 10);
    const status = await (await ship(p.path, s)).done;
    // A forged object: named as the resync snapshot of entry 5 (a write), metadata claiming that position.
    const bucket = await new Objm((await client(s)).nc).open('app-files');
    await bucket.putBlob({ name: 'snapshot-5.db', metadata: { seq: '5', hash: status.shippedHash, journalId: status.journalId } }, new Uint8Array(4096));
    const r = await replica(join(p.dir, 'fresh.db'), s.url);
    expect(r.position.seq).toBe(3);
    expect((await r.sync()).seq).toBe(head);
    expectReplicaEquals(p.path, r.path);
  });

  it('ok: `changetrail status <replica.db>` of a NATS replica shows its position against the stream, lag in entries and ms', async () => {
    const { s, p } = await shipped(3);
    await (await synced(p, s)).close();
    const head = await writeSome(p, 4, 10);
    await (await ship(p.path, s)).done;
    const status = cli(['status', join(p.dir, 'remote.db'), '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ appliedSeq: 3, sourceHeadSeq: head, lagEntries: head - 3, state: 'idle' });
    expect(JSON.parse(status.stdout).lagMs).toBeGreaterThan(0);
  });
});
