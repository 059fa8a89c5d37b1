/**
 * `natsSource`: a {@link ReplicaSource} that follows a journal shipped to NATS JetStream by
 * `shipJournal`, for replicas on other machines: `openReplica(path, { source: natsSource({ … }) })`.
 *
 * The stream is untrusted input. The chain root comes from the journal's manifest in the Object Store;
 * every message's frame is checked with the journal's own decoders (CRC, body validation, seq) and must
 * chain to the entry before it and, at the end of a pass, to the head the pass was given. Snapshots are
 * checked against their SHA-256 and size after the download.
 *
 * The replica calls `refresh` before each pass (one request: the stream's last message, i.e. the head),
 * then reads entries from an ordered consumer that stays open between passes, so a follower that keeps up
 * gets each entry pushed the moment the stream stores it. While that consumer is open, its deliveries are
 * the wake-up and the next pass's head (no request: the message the stream delivered names its seq and
 * hash, and is verified like any other); until then a core subscription to the stream's subject is the
 * hint. The follow loop also refreshes every poll interval without one (250 ms by default), so a hint
 * lost in a reconnect, or a consumer that stalls silently, costs at most that.
 *
 * Every await on NATS has a deadline (natsAwait, nats-connection.ts): a degraded cluster (its JetStream
 * meta leader killed) left an Object Store download waiting forever, silently. A hang becomes
 * NATS_UNAVAILABLE, which the follow loop retries with backoff and reports as a retry event.
 */
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { DeliverPolicy, jetstream, type Consumer, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { ChangetrailError } from '../errors.js';
import { GENESIS_FILE } from '../journal/format.js';
import { chainRootHash, decodeManifest, type Manifest } from '../journal/manifest.js';
import { positionOf, type Position } from '../journal/position.js';
import type { SnapshotRef } from '../journal/entry.js';
import { verifySnapshot } from '../apply/replay.js';
import { connectNats, natsAwait, natsCall, natsUnavailable, readObject, settleWithin, tellNatsEvent, TIMED_OUT, type NatsHandles } from './nats-connection.js';
import { validateNatsOptions, type NatsOptions } from './nats-address.js';
import { decodeEntryMessage, JOURNAL_ID_HEADER, MANIFEST_OBJECT, objectDigest, objectNameOf, prunedMarkerOf, type ReceivedEntry } from './nats-message.js';
import type { ReplicaSource, SourceEntry, SourceSnapshot, SourceWatch } from './source.js';

/** Messages the ordered consumer buffers ahead of the applier. */
const PREFETCH_MESSAGES = 1024;
/** Resync and checkpoint snapshots in the bucket, by the seq of the entry that names them. */
const SNAPSHOT_NAME = /^(?:snapshot|checkpoint)-(\d{1,16})\.db$/;
/** Snapshot objects whose entries are read to find the newest usable one (newest first). */
const SNAPSHOT_CANDIDATES_MAX = 4;

/** Options of {@link natsSource}. */
export type NatsSourceOptions = NatsOptions;

/** What a NATS source knows of the stream, for status output. */
export interface NatsSourceStatus {
  readonly target: string;
  readonly connected: boolean;
  /** The stream's last entry as of the last refresh. */
  readonly streamHeadSeq: number;
  /** The stream's first retained message (1 until retention removed some). */
  readonly firstRetainedSeq: number;
}

/**
 * A replica source that reads the stream `options.name`. Nothing connects until the replica first uses
 * it; `close()` disconnects.
 *
 * @example
 * const replica = await openReplica('replica.db', { source: natsSource({ servers: 'nats://10.0.0.5:4222', name: 'app' }) });
 * await replica.follow({ signal });
 */
export function natsSource(options: NatsSourceOptions): NatsReplicaSource {
  validateNatsOptions(options, 'natsSource');
  return new NatsReplicaSource(Object.freeze({ ...options }));
}

/** The NATS {@link ReplicaSource}. Create with {@link natsSource}. */
export class NatsReplicaSource implements ReplicaSource {
  readonly #options: NatsSourceOptions;
  #nats: NatsHandles | null = null;
  #connecting: Promise<NatsHandles> | null = null;
  #bucket: ObjectStore | null = null;
  #manifest: Manifest | null = null;
  #root: Position | null = null;
  #head: Position | null = null;
  #firstSeq = 1;
  /** The newest snapshot in the bucket that its entry in the stream describes (null: genesis only), once listed. */
  #snapshots: { newest: SourceSnapshot | null } | null = null;
  /** A resync or checkpoint entry went by (or a listing failed) since the last list. */
  #snapshotsStale = false;
  /** Listings in a row that failed (told as retry events). */
  #listingFailures = 0;
  #hashes = new Map<number, string>();
  #reader: OrderedReader | null = null;
  /** The follower's wake-up while it watches. */
  #wake: (() => void) | null = null;
  #closed = false;

  /** @internal Use {@link natsSource}. */
  constructor(options: NatsSourceOptions) {
    this.#options = options;
  }

  get description(): string {
    return this.#nats?.description ?? `nats:${this.#options.name}`;
  }

  get root(): Position {
    if (this.#root === null) throw new TypeError('natsSource: not refreshed yet (openReplica does that)');
    return this.#root;
  }

  /** Connects (once), reads the manifest (once) and the stream's head; prefetches the hash at `after`. */
  async refresh(after?: Position): Promise<void> {
    if (this.#closed) throw new TypeError('natsSource: closed');
    await natsCall(this.description, 'refresh', () => this.#refresh(after));
  }

  async #refresh(after?: Position): Promise<void> {
    const nats = await this.#connect();
    if (this.#root === null) await this.#readManifest(nats);
    if (!this.#headDelivered(after)) await this.#readHeadMessage(nats);
    if (after !== undefined && after.seq > 0 && after.seq < this.#head!.seq && !this.#hashes.has(after.seq)) await this.#prefetchHash(nats, after.seq);
    if (this.#snapshotsStale || this.#snapshots === null) await this.#refreshSnapshots();
  }

  /**
   * Lists the bucket's snapshots (needed only to rebase). Listing runs a consumer on the bucket's stream,
   * which a degraded cluster may not serve for a while: once a list is known, a failed listing keeps it
   * (a rebase on an older snapshot is still exact, just longer), is told as a retry event, and is tried
   * again at the next refresh.
   */
  async #refreshSnapshots(): Promise<void> {
    try {
      this.#snapshots = { newest: await this.#newestVerifiedSnapshot(await this.#connect()) };
      this.#snapshotsStale = false;
      this.#listingFailures = 0;
    } catch (error) {
      if (this.#snapshots === null) throw error;
      this.#snapshotsStale = true;
      this.#listingFailures += 1;
      const code = ChangetrailError.is(error) ? error.code : 'INTERNAL';
      tellNatsEvent(this.#options, { kind: 'retry', code, reason: `${(error as Error).message} (kept the last list; tried again at the next refresh)`, attempt: this.#listingFailures, delayMs: 0 });
    }
  }

  readHead(): Position {
    if (this.#head === null) throw new TypeError('natsSource: not refreshed yet');
    return this.#head;
  }

  status(): NatsSourceStatus {
    return {
      target: this.description, connected: this.#nats !== null && !this.#nats.nc.isClosed(),
      streamHeadSeq: this.#head?.seq ?? 0, firstRetainedSeq: this.#firstSeq,
    };
  }

  async *entriesAfter(from: Position, to: Position): AsyncGenerator<SourceEntry> {
    try {
      yield* this.#entriesAfter(from, to);
    } catch (cause) {
      if (cause instanceof ChangetrailError || cause instanceof TypeError || cause instanceof RangeError) throw cause;
      throw natsUnavailable(this.description, `read entries after ${from.seq}`, cause);
    }
  }

  async *#entriesAfter(from: Position, to: Position): AsyncGenerator<SourceEntry> {
    if (to.seq <= from.seq) return;
    const nats = await this.#connect();
    const reader = await this.#readerAt(nats, from.seq + 1);
    let prevHash = from.hash;
    while (reader.nextSeq <= to.seq) {
      const message = await reader.take();
      if (message.seq > reader.nextSeq) await this.#gap(nats, from, reader.nextSeq, message.seq);
      if (message.seq < reader.nextSeq) continue;
      const marker = prunedMarkerOf(message.headers, message.seq);
      if (marker !== null) await this.#markerReached(nats, from, marker);
      const entry = await this.#verify(nats, message, prevHash);
      if (entry.seq === to.seq && entry.hash !== to.hash) {
        throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${nats.description}: entry ${entry.seq} does not chain to the stream's head`, { seq: entry.seq, file: nats.description });
      }
      prevHash = entry.hash;
      reader.nextSeq = entry.seq + 1;
      this.#remember(entry.seq, entry.hash);
      if (entry.body.kind === 'resync' || entry.body.kind === 'checkpoint') this.#snapshotsStale = true;
      yield toSourceEntry(entry);
    }
  }

  hashAt(seq: number, head: Position): string | null {
    if (seq > head.seq) return null;
    if (seq === 0) return this.root.hash;
    if (seq === head.seq) return head.hash;
    const known = this.#hashes.get(seq);
    if (known !== undefined) return known;
    if (seq < this.#firstSeq - 1) throw this.#pruned(seq);
    return null;
  }

  /**
   * The newest base state at or before `head`: the newest resync or checkpoint snapshot whose entry the
   * stream holds (position, SHA-256 and size taken from that verified entry, never from object metadata),
   * else genesis (the manifest's digest).
   */
  newestSnapshot(head: Position): SourceSnapshot {
    const newest = this.#snapshots?.newest ?? null;
    if (newest !== null && newest.position.seq <= head.seq) return newest;
    return { position: this.root, ref: { file: GENESIS_FILE, sha256: this.#manifest!.genesisSha256, size: this.#manifest!.genesisSize } };
  }

  /**
   * Lists the bucket's snapshot objects and returns the newest one its entry describes: entry `S` must be
   * a resync naming `snapshot-S.db`, or a checkpoint naming `checkpoint-S.db` (the state as of its `at`),
   * with the object's digest and size equal to the entry's. An object without such an entry in the
   * stream (not retained, or not what it claims) is passed over.
   */
  async #newestVerifiedSnapshot(nats: NatsHandles): Promise<SourceSnapshot | null> {
    const candidates = (await this.#listSnapshots()).map((info) => ({ info, seq: Number(SNAPSHOT_NAME.exec(info.name)![1]) }))
      .filter(({ seq }) => seq >= 1 && seq <= this.#head!.seq).sort((a, b) => b.seq - a.seq).slice(0, SNAPSHOT_CANDIDATES_MAX);
    for (const { info, seq } of candidates) {
      const message = await this.#getMessage(nats, seq);
      if (message === null || prunedMarkerOf(message.headers, message.seq) !== null) continue;
      const entry = await this.#verify(nats, message, null);
      const ref = entry.body.snapshot;
      if (ref === undefined || ref.file !== info.name || objectDigest(ref.sha256) !== info.digest || ref.size !== info.size) continue;
      if (entry.body.kind === 'resync') return { position: positionOf(this.root.journalId, seq, entry.hash), ref };
      const at = entry.body.at;
      if (entry.body.kind === 'checkpoint' && at !== undefined) return { position: positionOf(this.root.journalId, at.seq, at.hash), ref };
    }
    return null;
  }

  /** Downloads the snapshot object into `targetPath` and verifies its SHA-256 and size. */
  async copySnapshot(ref: SnapshotRef, targetPath: string): Promise<void> {
    await natsCall(this.description, `download ${ref.file}`, () => this.#copySnapshot(ref, targetPath));
  }

  async #copySnapshot(ref: SnapshotRef, targetPath: string): Promise<void> {
    const nats = await this.#connect();
    const bucket = await this.#openBucket(nats);
    const file = await open(targetPath, 'wx');
    let found: Uint8Array | null;
    try {
      found = await readObject(nats, bucket, ref.file, async (chunk) => {
        await file.write(chunk);
      });
    } finally {
      await file.close();
    }
    if (found === null) throw new ChangetrailError('NATS_OBJECT_MISSING', `download ${nats.bucket}/${ref.file}: no such object`, { bucket: nats.bucket, name: ref.file });
    verifySnapshot(dirname(targetPath), basename(targetPath), ref.sha256, ref.size);
  }

  async watch(wake: () => void): Promise<SourceWatch> {
    return natsCall(this.description, 'watch', () => this.#watch(wake));
  }

  async #watch(wake: () => void): Promise<SourceWatch> {
    const nats = await this.#connect();
    this.#wake = wake;
    // While the reader is open, its own deliveries wake the follower (and the next pass takes its head
    // from them, without a request); the subject's messages are the hint until then.
    const subscription = nats.nc.subscribe(nats.subject, { callback: () => {
      if (this.#reader?.healthy !== true) wake();
    } });
    void (async () => {
      for await (const status of nats.nc.status()) if (status.type === 'reconnect') wake();
    })().catch(() => undefined);
    // The subscription is only a hint (the follow loop also polls): one that the server has not confirmed is not waited for.
    await natsAwait(nats, 'subscribe', () => nats.nc.flush()).catch(() => undefined);
    return {
      close: async () => {
        if (this.#wake === wake) this.#wake = null;
        subscription.unsubscribe();
      },
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader?.close();
    const nats = this.#nats;
    this.#nats = null;
    void nats?.nc.close().catch(() => undefined);
  }

  #connect(): Promise<NatsHandles> {
    if (this.#nats !== null) return Promise.resolve(this.#nats);
    this.#connecting ??= connectNats({ clientName: 'changetrail replicate', ...this.#options }).then((nats) => {
      this.#nats = nats;
      return nats;
    }, (error: unknown) => {
      this.#connecting = null;
      throw error;
    });
    return this.#connecting;
  }

  async #openBucket(nats: NatsHandles): Promise<ObjectStore> {
    if (this.#bucket !== null) return this.#bucket;
    try {
      this.#bucket = await nats.openBucket(null);
    } catch (cause) {
      if (!isBucketMissing(cause)) throw cause instanceof ChangetrailError ? cause : natsUnavailable(nats.description, `open ${nats.bucket}`, cause);
      throw new ChangetrailError('NATS_OBJECT_MISSING', `open ${nats.bucket}: ${(cause as Error).message} (nothing shipped to ${nats.stream} yet?)`, {
        bucket: nats.bucket, name: MANIFEST_OBJECT,
      }, { cause });
    }
    return this.#bucket;
  }

  async #readManifest(nats: NatsHandles): Promise<void> {
    const bucket = await this.#openBucket(nats);
    const bytes = await readObject(nats, bucket, MANIFEST_OBJECT);
    if (bytes === null) throw new ChangetrailError('NATS_OBJECT_MISSING', `read ${nats.bucket}/${MANIFEST_OBJECT}: no such object`, { bucket: nats.bucket, name: MANIFEST_OBJECT });
    this.#manifest = decodeManifest(bytes, `${nats.bucket}/${MANIFEST_OBJECT}`);
    this.#root = positionOf(this.#manifest.journalId, 0, chainRootHash(bytes));
  }

  /**
   * A head without a request: the newest message the open reader has been delivered past `after` (the
   * stream stored it; the pass verifies it like any other). An earlier head than the stream's is fine:
   * the next pass goes on from there. Not for a pruned marker, nor before a head was read once.
   */
  #headDelivered(after: Position | undefined): boolean {
    if (after === undefined || this.#head === null || this.#reader?.healthy !== true || this.#reader.nextSeq !== after.seq + 1) return false;
    const newest = this.#reader.newestDelivered(Math.max(after.seq, this.#head.seq));
    if (newest === null || prunedMarkerOf(newest.headers, newest.seq) !== null) return false;
    return this.#headFrom(newest);
  }

  /** The head: the stream's last message (seq, hash from its id, journal from its header; verified when read). */
  async #readHeadMessage(nats: NatsHandles): Promise<void> {
    const last = await storedMessage(nats, 'read the stream head', { last_by_subj: nats.subject });
    if (last === null) {
      this.#head = this.#root;
      return;
    }
    const marker = prunedMarkerOf(last.headers, last.seq);
    if (marker !== null) {
      throw natsUnavailable(nats.description, 'read the stream head', new Error(`the shipper is re-basing the stream on checkpoint ${marker.checkpointSeq} (message ${last.seq} is a pruned marker)`));
    }
    if (!this.#headFrom(last)) {
      throw new ChangetrailError('NATS_STREAM_MISMATCH', `read ${nats.description}: message ${last.seq} is not a changetrail entry`, {
        stream: nats.stream, reason: 'not-changetrail', seq: last.seq, streamHash: null, journalHash: null,
      });
    }
  }

  /** Takes `message` as the head; false when it does not name a journal and an entry hash. */
  #headFrom(message: StreamMessage): boolean {
    const journalId = message.headers?.get(JOURNAL_ID_HEADER) ?? '';
    const hash = message.headers?.get('Nats-Msg-Id') ?? '';
    if (!/^[0-9a-f]{32}$/.test(journalId) || !/^[0-9a-f]{64}$/.test(hash)) return false;
    this.#head = positionOf(journalId, message.seq, hash);
    return true;
  }

  async #prefetchHash(nats: NatsHandles, seq: number): Promise<void> {
    const next = await this.#getMessage(nats, seq + 1);
    if (next !== null && prunedMarkerOf(next.headers, next.seq) === null) {
      const entry = await this.#verify(nats, next, null);
      this.#remember(seq, Buffer.from(entry.body.prevHash).toString('hex'));
      return;
    }
    // Entry seq + 1 is a pruned marker (or gone): entry seq's own message names its hash.
    const own = await this.#getMessage(nats, seq);
    if (own === null || prunedMarkerOf(own.headers, own.seq) !== null) return;
    this.#remember(seq, (await this.#verify(nats, own, null)).hash);
  }

  async #getMessage(nats: NatsHandles, seq: number): Promise<StreamMessage | null> {
    const stored = await storedMessage(nats, `read message ${seq}`, { seq });
    if (stored === null) await this.#readFirstSeq(nats);
    return stored;
  }

  async #readFirstSeq(nats: NatsHandles): Promise<void> {
    const info = await natsAwait(nats, 'read stream info', () => nats.jsm.streams.info(nats.stream));
    this.#firstSeq = info.state.first_seq;
  }

  async #verify(nats: NatsHandles, message: StreamMessage, prevHash: string | null): Promise<ReceivedEntry> {
    const objectName = objectNameOf(message.headers);
    let frame = message.data;
    if (objectName !== null) {
      const bytes = await readObject(nats, await this.#openBucket(nats), objectName);
      if (bytes === null) throw new ChangetrailError('NATS_OBJECT_MISSING', `read ${nats.bucket}/${objectName}: no such object`, { bucket: nats.bucket, name: objectName });
      frame = bytes;
    }
    return decodeEntryMessage(frame, message.headers, message.seq, this.root.journalId, prevHash, nats.description);
  }

  /**
   * A pruned marker: the primary pruned the entries up to `baseSeq` before they were shipped. Once the
   * stream holds the checkpoint entry that re-bases it, HISTORY_PRUNED (the replica rebases on it, as on
   * a pruned local journal); until then the shipper is still re-basing: NATS_UNAVAILABLE, tried again.
   */
  async #markerReached(nats: NatsHandles, from: Position, marker: { baseSeq: number; checkpointSeq: number }): Promise<never> {
    await this.#refreshSnapshots();
    this.#reader?.close();
    this.#reader = null;
    const snapshot = this.newestSnapshot(this.readHead());
    if (snapshot.position.seq < marker.baseSeq) {
      throw natsUnavailable(nats.description, `read entry ${from.seq + 1}`, new Error(`entries through ${marker.baseSeq} were pruned on the primary; waiting for the shipper to publish checkpoint ${marker.checkpointSeq}`));
    }
    throw new ChangetrailError('HISTORY_PRUNED', `read ${nats.description}: entries ${from.seq + 1} to ${marker.baseSeq} were pruned on the primary before they were shipped`, {
      seq: from.seq + 1, earliestSeq: marker.baseSeq + 1, baseSeq: marker.baseSeq, checkpointSeq: marker.checkpointSeq,
    });
  }

  /** A message past the expected one: retention removed what the replica needs, or the stream has a hole. */
  async #gap(nats: NatsHandles, from: Position, expectedSeq: number, foundSeq: number): Promise<never> {
    await this.#readFirstSeq(nats);
    if (expectedSeq < this.#firstSeq) throw this.#pruned(from.seq);
    throw new ChangetrailError('JOURNAL_GAP', `read ${nats.description}: expected entry ${expectedSeq}, found ${foundSeq}`, { file: nats.description, expectedSeq, foundSeq });
  }

  /** The stream's limits removed what follows `appliedSeq`: HISTORY_PRUNED, as from a pruned local journal (the replica rebases on the newest snapshot). */
  #pruned(appliedSeq: number): ChangetrailError<'HISTORY_PRUNED'> {
    const snapshot = this.newestSnapshot(this.readHead());
    this.#reader?.close();
    this.#reader = null;
    return new ChangetrailError('HISTORY_PRUNED',
      `read ${this.description}: the stream no longer holds the entries after ${appliedSeq} (its first retained entry is ${this.#firstSeq})`, {
        seq: appliedSeq + 1, earliestSeq: this.#firstSeq, baseSeq: this.#firstSeq - 1, checkpointSeq: snapshot.position.seq,
      });
  }

  async #readerAt(nats: NatsHandles, seq: number): Promise<OrderedReader> {
    const previous = this.#reader;
    if (previous !== null && previous.nextSeq === seq && previous.healthy) return previous;
    previous?.close();
    const tell = (at: number, reason: string): void => tellNatsEvent(this.#options, { kind: 'consumer', seq: at, reason });
    this.#reader = new OrderedReader(nats, seq, tell, () => this.#wake?.(), previous === null ? 'start' : previous.healthy ? 'moved' : 'stalled');
    return this.#reader;
  }

  async #listSnapshots(): Promise<ObjectInfo[]> {
    const nats = await this.#connect();
    const bucket = await this.#openBucket(nats);
    return (await natsAwait(nats, 'list snapshots', () => bucket.list())).filter((info) => SNAPSHOT_NAME.test(info.name) && !info.deleted);
  }

  #remember(seq: number, hash: string): void {
    this.#hashes.set(seq, hash);
    // Only recent hashes are asked for (the replica's own position); keep a few.
    if (this.#hashes.size > 64) this.#hashes.delete(this.#hashes.keys().next().value!);
  }
}

/** What nats.js reports of its ordered consumer that a user may need to see (not every pull). */
const NOTABLE_CONSUMER_STATUS = new Set(['heartbeats_missed', 'consumer_not_found', 'stream_not_found', 'consumer_deleted', 'reset', 'ordered_consumer_recreated', 'no_responders']);
/**
 * A message the stream holds (the reader only asks for entries up to the head it read) that has not
 * arrived within this long means the consumer stalled: it is replaced by a new one at the same entry,
 * the wait doubling per stall, until the request timeout. nats.js 3.4's ordered consumer stalls after
 * it re-creates itself (a server restart: "consumer not found"): it keeps the old pull's pending count
 * and asks the new consumer for only as many messages as it had received before (seen: 41 delivered,
 * then nothing until its 30-s heartbeat check).
 */
const STALL_MS = 1_000;

type StreamMessage = { seq: number; data: Uint8Array; headers: JsMsg['headers'] };

/**
 * An ordered consumer's messages from `nextSeq` on, buffered as they arrive and taken one at a time.
 * A consumer that stops delivering is replaced in place (the caller's pass goes on); only when none
 * delivers within the request timeout does `take` fail (NATS_UNAVAILABLE), and the reader is then
 * unhealthy. `onDelivered` hears of each message (the follower's wake-up while the reader is open).
 */
class OrderedReader {
  nextSeq: number;
  healthy = true;
  readonly #nats: NatsHandles;
  readonly #tell: (seq: number, reason: string) => void;
  readonly #onDelivered: () => void;
  #reason: string;
  #consumer: Consumer | null = null;
  #messages: ConsumerMessages | null = null;
  /** Bumped when a consumer is dropped: what an old one still delivers is ignored. */
  #generation = 0;
  #buffer: StreamMessage[] = [];
  #ended = false;
  #arrived: (() => void) | null = null;
  #drained: (() => void) | null = null;

  constructor(nats: NatsHandles, nextSeq: number, tell: (seq: number, reason: string) => void, onDelivered: () => void, reason: string) {
    this.#nats = nats;
    this.nextSeq = nextSeq;
    this.#tell = tell;
    this.#onDelivered = onDelivered;
    this.#reason = reason;
  }

  /** The newest message delivered and not taken yet, if it is past `seq`. */
  newestDelivered(seq: number): StreamMessage | null {
    const newest = this.#buffer.at(-1);
    return newest !== undefined && newest.seq > seq ? newest : null;
  }

  async take(): Promise<StreamMessage> {
    const { timeoutMs, description } = this.#nats;
    const deadline = performance.now() + timeoutMs;
    let stallMs = STALL_MS;
    let failure: unknown = null;
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        this.healthy = false;
        throw natsUnavailable(description, `read entry ${this.nextSeq}`, failure ?? new Error(`no message within ${timeoutMs} ms`));
      }
      try {
        const result = await this.#next(Math.min(stallMs, remaining));
        if (result !== null) return result;
        failure = null;
        this.#replace('stalled');
      } catch (cause) {
        // The consumer could not be made (the server restarting): try again within the deadline.
        failure = cause;
        this.#replace('failed');
        await new Promise((r) => setTimeout(r, Math.min(stallMs, Math.max(0, deadline - performance.now()))));
      }
      stallMs *= 2;
    }
  }

  /** The next message, or null when none arrived within `waitMs` (or the consumer stopped). */
  async #next(waitMs: number): Promise<StreamMessage | null> {
    if (this.#messages === null) await this.#open(waitMs);
    if (this.#buffer.length === 0 && !this.#ended) {
      await settleWithin(new Promise<void>((resolveArrival) => (this.#arrived = resolveArrival)), waitMs);
      this.#arrived = null;
    }
    const message = this.#buffer.shift() ?? null;
    if (this.#buffer.length < PREFETCH_MESSAGES) this.#drained?.();
    return message;
  }

  /**
   * Creates the consumer, waiting at most `timeoutMs` for the server's answer. In a cluster that lost a
   * node, nats-server 2.9 still places about half of the new R1 consumers on the dead node, and those
   * requests go unanswered (measured: 5 of 11 creations timed out after one of 3 nodes was SIGKILLed):
   * a short wait and another try finds a live one.
   */
  async #open(timeoutMs: number): Promise<void> {
    const seq = this.nextSeq;
    this.#tell(seq, this.#reason);
    const waitMs = Math.max(1, Math.round(timeoutMs));
    const js = jetstream(this.#nats.nc, { timeout: waitMs });
    const consumer = await natsAwait(this.#nats, `read entry ${seq}`, () => js.consumers.get(this.#nats.stream, { filter_subjects: this.#nats.subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq }), waitMs);
    const messages = await natsAwait(this.#nats, `read entry ${seq}`, () => consumer.consume({ max_messages: PREFETCH_MESSAGES }), waitMs);
    this.#consumer = consumer;
    this.#messages = messages;
    this.#ended = false;
    void this.#pump(this.#generation, messages[Symbol.asyncIterator]());
    void (async () => {
      for await (const status of messages.status()) if (NOTABLE_CONSUMER_STATUS.has(status.type)) this.#tell(this.nextSeq, status.type);
    })().catch(() => undefined);
  }

  /**
   * Moves the consumer's messages into the buffer as they arrive, at most {@link PREFETCH_MESSAGES}
   * ahead of `take` (the iterator, not a callback: nats.js pulls more only as its iterator is read).
   */
  async #pump(generation: number, iterator: AsyncIterator<JsMsg>): Promise<void> {
    try {
      while (generation === this.#generation) {
        if (this.#buffer.length >= PREFETCH_MESSAGES) {
          await new Promise<void>((resolveDrained) => (this.#drained = resolveDrained));
          continue;
        }
        const result = await iterator.next();
        if (generation !== this.#generation) return;
        if (result.done === true) break;
        this.#buffer.push({ seq: result.value.seq, data: result.value.data, headers: result.value.headers });
        this.#arrived?.();
        this.#onDelivered();
      }
    } catch {
      // The consumer failed: as if it ended (take replaces it).
    }
    if (generation !== this.#generation) return;
    this.#ended = true;
    this.#arrived?.();
  }

  /** Drops the current consumer; the next take opens another at `nextSeq`. */
  #replace(reason: string): void {
    this.#stopConsumer();
    this.#reason = reason;
  }

  #stopConsumer(): void {
    const messages = this.#messages;
    const consumer = this.#consumer;
    this.#generation += 1;
    this.#messages = null;
    this.#consumer = null;
    this.#buffer = [];
    this.#ended = false;
    // A pump of the old consumer waiting for room ends (its generation is gone).
    this.#drained?.();
    this.#drained = null;
    if (messages !== null) void Promise.resolve(messages.close()).catch(() => undefined);
    // Best effort: the server would keep it (and its pull) for its 5-minute inactivity threshold.
    if (consumer !== null) void consumer.delete().catch(() => undefined);
  }

  close(): void {
    this.healthy = false;
    this.#stopConsumer();
  }
}

function toSourceEntry(entry: ReceivedEntry): SourceEntry {
  const body = entry.body;
  return {
    seq: entry.seq, kind: body.kind, hash: entry.hash, time: body.time, changeset: body.changeset, resume: null,
    ...(body.rowids === undefined ? {} : { rowids: body.rowids }),
    ...(body.sql === undefined ? {} : { sql: body.sql }),
    ...(body.snapshot === undefined ? {} : { snapshot: body.snapshot }),
    ...(body.undoes === undefined ? {} : { undoes: body.undoes }),
  };
}

/** A stream message by `query` (null when the stream holds none), within the request timeout. */
async function storedMessage(nats: NatsHandles, operation: string, query: { seq: number } | { last_by_subj: string }): Promise<StreamMessage | null> {
  const stored = await natsAwait(nats, operation, () => nats.jsm.streams.getMessage(nats.stream, query).catch((cause: unknown) => {
    if (isNoMessage(cause)) return null;
    throw cause;
  }));
  return stored === null ? null : { seq: stored.seq, data: stored.data, headers: stored.header };
}

function isNoMessage(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  return code === 10037 || /no message found/i.test((cause as Error | null)?.message ?? '');
}

/** nats.js 3.4: "object store not found" (its stream's info came back empty), or the API's "stream not found". */
function isBucketMissing(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  return code === 10059 || /(?:object store|stream) not found/i.test((cause as Error | null)?.message ?? '');
}
