/**
 * `shipJournal`: publishes a journal's committed entries to a NATS JetStream stream, in order, exactly
 * once, for replicas on other machines (nats-source.ts follows it).
 *
 * Exactly once without local bookkeeping: message n is entry n, and every publish expects the stream's
 * last sequence to be n-1 (`Nats-Expected-Last-Sequence`) and carries the entry hash as `Nats-Msg-Id`.
 * After any failure (a lost connection, a timeout, a kill) the shipper reads the stream's last message,
 * verifies it against the local journal at that seq, and continues after it; a stream holding another
 * history is refused, never appended to. A second shipper is refused at start (the first answers on a
 * claim subject), and one that slips through anyway cannot interleave: its publishes either repeat
 * identical entries (de-duplicated) or fail the expected-sequence check.
 */
import { hostname } from 'node:os';
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { JetStreamApiError, type PubAck, type StreamConfig } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { MsgHdrs, Subscription } from '@nats-io/transport-node';
import { ChangetrailError } from '../errors.js';
import { crashpointNamed } from '../crashpoint.js';
import { io } from '../journal/files.js';
import { encodeEntryBody, hashEntryBody } from '../journal/entry.js';
import { encodeFrame } from '../journal/frame.js';
import { GENESIS_FILE } from '../journal/format.js';
import { readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import { openJournal, type Journal, type JournalCursor, type JournalEntry } from '../journal/journal.js';
import { encodeManifest } from '../journal/manifest.js';
import { positionOf, type Position } from '../journal/position.js';
import { FOLLOWER_NAME } from '../journal/retention-pins.js';
import { parseSegmentName } from '../journal/segment.js';
import { SegmentFile } from '../journal/segment-file.js';
import { connectNats, natsAwait, natsCall, natsUnavailable, readObject, settleWithin, tellNatsEvent, type NatsHandles } from './nats-connection.js';
import { validateNatsOptions, type NatsOptions } from './nats-address.js';
import { decodeEntryMessage, entryHeaders, frameObjectName, MANIFEST_OBJECT, objectDigest, objectNameOf, PAYLOAD_HEADROOM, prunedMarkerHeaders, prunedMarkerOf } from './nats-message.js';
import { openJournalSource } from './journal-source.js';
import type { HeadWait, ReplicaSource, SourceWatch } from './source.js';
import { Wakeup } from './wakeup.js';

/** Options of {@link shipJournal}. */
export interface ShipOptions extends NatsOptions {
  /** Keep shipping as the primary commits, until `close()` or `signal`. Default: stop at the head. */
  follow?: boolean;
  /** Replicas of the stream and bucket when this call creates them (1..5). Default 1. */
  replicas?: number;
  /** Publishes awaiting their ack at once. Default 256. */
  inflightMax?: number;
  /** Polling fallback of `follow` when no change hint arrives. Default 250 ms. */
  pollIntervalMs?: number;
  /**
   * The retention follower the shipper registers in the journal (FORMAT.md §11.3) with the position the
   * stream has acknowledged, so that pruning keeps what is not shipped yet (within the hold limits).
   * Default `nats-<name>`; null: not registered.
   */
  followerName?: string | null;
  signal?: AbortSignal;
}

export type ShipState = 'starting' | 'shipping' | 'following' | 'done' | 'failed' | 'closed';

/** `shipper.status()`. */
export interface ShipStatus {
  readonly database: string;
  readonly target: string;
  readonly journalId: string;
  /** The primary's committed head, as last read. */
  readonly headSeq: number;
  /** The newest entry the stream is known to hold. */
  readonly shippedSeq: number;
  readonly shippedHash: string;
  readonly lagEntries: number;
  /** 0 when the stream holds the head; else how long it has been behind (local clock). */
  readonly lagMs: number;
  /** Entries this shipper published (duplicates the stream already held not counted). */
  readonly publishedCount: number;
  /** Times the shipper re-read the stream to resume (after a lost connection, a timeout, a refusal). */
  readonly resumeCount: number;
  /** The retention follower it registers as (null: none). */
  readonly followerName: string | null;
  readonly state: ShipState;
}

/** A running shipper. */
export interface Shipper {
  /** Resolves when shipping ends (the head reached, or `close()` with `follow`); rejects on a refusal. */
  readonly done: Promise<ShipStatus>;
  status(): ShipStatus;
  /** Stops between publishes (waiting for the acks in flight) and disconnects. Idempotent. */
  close(): Promise<ShipStatus>;
}

const INFLIGHT_MAX = 256;
const POLL_INTERVAL_MS = 250;
/** Failures in a row (each followed by a resume) before the shipper gives up. */
const RESUME_ATTEMPTS_MAX = 60;
const CLAIM_TIMEOUT_MS = 500;
const REPLICAS_MAX = 5;
/** The registration (one small durable write, fsynced: kept off the per-entry path) is rewritten at most this often while the stream moves, and this often while idle. */
const REGISTER_INTERVAL_MS = 5_000;
const REGISTER_REFRESH_MS = 60_000;
/** JetStream's default duplicate window (2 minutes), stated so the recipe and README name it. */
export const DUPLICATE_WINDOW_MS = 120_000;

/**
 * Starts shipping the journal of `databasePath` (a primary database or its journal directory) to the
 * stream `options.name`. Resolves once connected and once the stream's content is verified against the
 * local journal; shipping goes on in the background (`done`).
 *
 * @example
 * const shipper = await shipJournal('app.db', { servers: 'nats://127.0.0.1:4222', name: 'app' });
 * const status = await shipper.done; // the stream holds the head
 * @throws ChangetrailError NATS_UNAVAILABLE (no server), NATS_STREAM_MISMATCH (the stream holds another
 *   history, or is not a changetrail stream), NATS_STREAM_FENCED (another shipper is active), JOURNAL_*.
 */
export async function shipJournal(databasePath: string, options: ShipOptions): Promise<Shipper> {
  if (typeof databasePath !== 'string' || databasePath.length === 0) throw new TypeError('shipJournal: databasePath must be a non-empty string');
  validateNatsOptions(options, 'shipJournal');
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) throw new RangeError(`shipJournal: replicas must be 1..${REPLICAS_MAX}`);
  if (options.followerName !== undefined && options.followerName !== null && (typeof options.followerName !== 'string' || !FOLLOWER_NAME.test(options.followerName))) {
    throw new TypeError('shipJournal: followerName must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit (or null)');
  }
  const inflightMax = options.inflightMax ?? INFLIGHT_MAX;
  if (!Number.isInteger(inflightMax) || inflightMax < 1) throw new RangeError('shipJournal: inflightMax must be an integer >= 1');
  const source = openJournalSource(databasePath);
  try {
    const dir = journalDirectory(databasePath);
    const identity = readManifest(dir)!;
    const handles = await connectNats({ clientName: 'changetrail ship', ...options });
    const shipper = new JournalShipper(source, dir, identity, handles, { ...options, replicas, inflightMax });
    try {
      await shipper.start();
      shipper.run();
    } catch (error) {
      await shipper.close();
      throw error;
    }
    return shipper;
  } catch (error) {
    source.close();
    throw error;
  }
}

function journalDirectory(databasePath: string): string {
  const absolute = io('resolve source', databasePath, () => realpathSync(resolve(databasePath)));
  return io('stat source', absolute, () => statSync(absolute).isDirectory()) ? absolute : `${absolute}.changes`;
}

interface Inflight {
  readonly position: Position;
  readonly ack: Promise<PubAck>;
}

class JournalShipper implements Shipper {
  readonly done: Promise<ShipStatus>;
  readonly #source: ReplicaSource;
  readonly #dir: string;
  readonly #identity: JournalIdentity;
  readonly #root: Position;
  readonly #nats: NatsHandles;
  readonly #options: ShipOptions & { replicas: number; inflightMax: number };
  readonly #stop = new AbortController();
  readonly #wakeup = new Wakeup();
  #state: ShipState = 'starting';
  #head: Position;
  #shipped: Position;
  #behindSinceMs: number | null = null;
  #published = 0;
  #resumes = 0;
  readonly #followerName: string | null;
  #registeredAtMs = 0;
  #registeredSeq = -1;
  /** The stream's last message is the pruned marker of this entry (a re-base stopped half-way), else null. */
  #markersThrough: number | null = null;
  #bucket: ObjectStore | null = null;
  #claim: Subscription | null = null;
  #watch: SourceWatch | null = null;
  #cursor: JournalCursor | null = null;
  #segment: SegmentFile | null = null;
  #resolveDone!: (status: ShipStatus) => void;
  #rejectDone!: (error: unknown) => void;
  #closing: Promise<ShipStatus> | null = null;
  #running: Promise<void> | null = null;

  constructor(source: ReplicaSource, dir: string, identity: JournalIdentity, nats: NatsHandles, options: ShipOptions & { replicas: number; inflightMax: number }) {
    this.#source = source;
    this.#dir = dir;
    this.#identity = identity;
    this.#root = source.root;
    this.#nats = nats;
    this.#options = options;
    this.#head = this.#root;
    this.#shipped = this.#root;
    this.#followerName = options.followerName === undefined ? `nats-${nats.stream}` : options.followerName;
    this.done = new Promise((resolveDone, rejectDone) => {
      this.#resolveDone = resolveDone;
      this.#rejectDone = rejectDone;
    });
    this.done.catch(() => undefined);
    if (options.signal?.aborted === true) this.#stop.abort();
    options.signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
  }

  /** Claims the stream, checks its content, then ships in the background. */
  async start(): Promise<void> {
    await natsCall(this.#nats.description, 'start shipping', () => this.#start());
  }

  async #start(): Promise<void> {
    await this.#claimStream();
    await this.#ensureStream();
    this.#bucket = await this.#nats.openBucket({ replicas: this.#options.replicas });
    await this.#ensureManifest();
    if (existsSync(join(this.#dir, GENESIS_FILE))) {
      await this.#ensureSnapshot({ file: GENESIS_FILE, sha256: this.#identity.manifest.genesisSha256, size: this.#identity.manifest.genesisSize }, this.#root, false);
    }
    await this.#resume('start');
    if (this.#options.follow === true) this.#watch = await this.#source.watch(() => this.#wakeup.notify());
  }

  /** @internal After {@link start}: ships in the background. */
  run(): void {
    this.#running = this.#run();
    // Done (the head reached, a stop, or a failure) releases the claim and the connection by itself.
    this.#running.then(
      () => void this.close(),
      (error: unknown) => {
        this.#state = 'failed';
        this.#rejectDone(error);
        void this.close();
      },
    );
  }

  status(): ShipStatus {
    const lagEntries = Math.max(0, this.#head.seq - this.#shipped.seq);
    return {
      database: this.#source.description, target: this.#nats.description, journalId: this.#root.journalId,
      headSeq: this.#head.seq, shippedSeq: this.#shipped.seq, shippedHash: this.#shipped.hash, lagEntries,
      lagMs: lagEntries === 0 || this.#behindSinceMs === null ? 0 : Date.now() - this.#behindSinceMs,
      publishedCount: this.#published, resumeCount: this.#resumes, followerName: this.#followerName, state: this.#state,
    };
  }

  close(): Promise<ShipStatus> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      this.#wakeup.notify();
      await this.#running?.catch(() => undefined);
      this.#register(true);
      await this.#watch?.close().catch(() => undefined);
      this.#claim?.unsubscribe();
      this.#segment?.close();
      this.#source.close();
      // Draining waits for the server; one that does not answer is not waited for past the request timeout.
      await settleWithin(this.#nats.nc.drain(), this.#nats.timeoutMs).catch(() => undefined);
      if (!this.#nats.nc.isClosed()) await this.#nats.nc.close().catch(() => undefined);
      if (this.#state !== 'failed' && this.#state !== 'done') this.#state = 'closed';
      const status = this.status();
      this.#resolveDone(status);
      return status;
    })();
    return this.#closing;
  }

  async #run(): Promise<void> {
    let failures = 0;
    // After a change hint or a pass, the head is read without waiting for a writer's lock (the writer
    // publishes the head marker right after its COMMIT); only the polling fallback waits. Waiting in
    // SQLite's busy handler blocks this process's event loop: against a writer at 200 commits/s it held
    // the shipper up to a second (commit → stored p50 219 ms, p99 1,092 ms, measured).
    let wait: HeadWait = 'wait';
    while (!this.#stop.signal.aborted) {
      const generation = this.#wakeup.generation;
      try {
        this.#readHead(wait);
        if (this.#head.seq > this.#shipped.seq) {
          this.#state = 'shipping';
          await natsCall(this.#nats.description, 'ship', () => this.#shipUpTo(this.#head));
          failures = 0;
          wait = 'no-wait';
          continue;
        }
        failures = 0;
        this.#register(false);
        if (this.#options.follow !== true) break;
        this.#state = 'following';
        await this.#wakeup.wait(generation, this.#options.pollIntervalMs ?? POLL_INTERVAL_MS, this.#stop.signal);
        wait = this.#wakeup.generation !== generation ? 'no-wait' : 'wait';
      } catch (error) {
        wait = 'wait';
        if (!isRetryable(error) || ++failures > RESUME_ATTEMPTS_MAX) throw error;
        const delayMs = Math.min(5_000, 100 * failures);
        this.#tellRetry(error as ChangetrailError, failures, delayMs);
        await pause(delayMs, this.#stop.signal);
        if (this.#stop.signal.aborted) break;
        await natsCall(this.#nats.description, 'resume', () => this.#resume('after a failure')).catch((error: unknown) => {
          if (!isRetryable(error)) throw error;
          this.#tellRetry(error as ChangetrailError, failures, 0);
        });
      }
    }
    this.#state = this.#options.follow === true ? 'closed' : 'done';
  }

  #readHead(wait: HeadWait = 'wait'): void {
    const head = this.#source.readHead(wait);
    if (head.journalId !== this.#root.journalId) {
      throw new ChangetrailError('JOURNAL_MISMATCH', `ship ${this.#source.description}: it now holds journal ${head.journalId}, not ${this.#root.journalId}`, {
        databaseJournalId: head.journalId, journalJournalId: this.#root.journalId, reason: 'journal ids differ',
      });
    }
    if (head.seq > this.#shipped.seq && this.#behindSinceMs === null) this.#behindSinceMs = Date.now();
    this.#head = head;
  }

  /** Publishes `shipped+1 .. head` with at most `inflightMax` acks outstanding. */
  async #shipUpTo(head: Position): Promise<void> {
    let cursor: JournalCursor;
    try {
      cursor = this.#cursorTo(head);
    } catch (error) {
      if (!ChangetrailError.is(error, 'HISTORY_PRUNED')) throw error;
      await this.#rebaseStream(head, error);
      if (this.#stop.signal.aborted) return;
      cursor = this.#cursorTo(head);
    }
    const inflight: Inflight[] = [];
    try {
      for (const entry of cursor.read()) {
        const position = positionOf(head.journalId, entry.seq, entry.hash);
        if ((entry.kind === 'resync' || entry.kind === 'checkpoint') && entry.snapshot !== undefined) {
          await this.#settleAll(inflight);
          await this.#ensureSnapshot(entry.snapshot, entry.at === undefined ? position : positionOf(head.journalId, entry.at.seq, entry.at.hash), entry.kind === 'checkpoint');
        }
        inflight.push(await this.#publish(entry, position));
        if (inflight.length >= this.#options.inflightMax) await this.#settle(inflight.shift()!);
        if (this.#stop.signal.aborted) break;
      }
      await this.#settleAll(inflight);
    } catch (error) {
      // Acks still in flight are awaited (and ignored): the resume reads what the stream holds.
      await Promise.allSettled(inflight.map((item) => item.ack));
      this.#cursor = null;
      throw error;
    }
  }

  async #publish(entry: JournalEntry, position: Position): Promise<Inflight> {
    const frame = this.#frameOf(entry);
    const maxPayload = this.#nats.nc.info?.max_payload ?? 1024 * 1024;
    let payload = frame;
    let objectName: string | null = null;
    if (frame.byteLength > maxPayload - PAYLOAD_HEADROOM) {
      objectName = frameObjectName(entry.seq);
      // Each chunk's publish has the request timeout (an entry is at most a few chunks past the payload limit).
      await this.#bucket!.putBlob({ name: objectName, metadata: { seq: String(entry.seq), hash: position.hash } }, frame);
      payload = new Uint8Array(0);
    }
    const ack = this.#nats.js.publish(this.#nats.subject, payload, {
      msgID: position.hash,
      expect: { lastSequence: entry.seq - 1, streamName: this.#nats.stream },
      headers: entryHeaders(position.journalId, entry.seq, objectName),
      timeout: this.#nats.timeoutMs,
    });
    ack.catch(() => undefined);
    return { position, ack };
  }

  async #settleAll(inflight: Inflight[]): Promise<void> {
    while (inflight.length > 0) await this.#settle(inflight.shift()!);
  }

  async #settle(item: Inflight): Promise<void> {
    let ack: PubAck;
    try {
      ack = await item.ack;
    } catch (cause) {
      throw publishFailure(this.#nats.description, item.position.seq, cause);
    }
    crashpointNamed('ship-after-publish');
    if (ack.seq !== item.position.seq) {
      throw new ChangetrailError('NATS_STREAM_FENCED', `ship to ${this.#nats.description}: entry ${item.position.seq} was stored as message ${ack.seq}`, {
        stream: this.#nats.stream, seq: item.position.seq, reason: 'stored out of place',
      });
    }
    if (!ack.duplicate) this.#published += 1;
    this.#shipped = item.position;
    if (this.#shipped.seq >= this.#head.seq) this.#behindSinceMs = null;
    this.#register(false);
  }

  /**
   * Reports the acknowledged position as the journal's retention follower: at most once a second while
   * it moves (`now`: whenever it moved), once a minute while idle, so the record never looks abandoned.
   * Best effort: without write access to the journal directory the shipper ships unregistered.
   */
  #register(now: boolean): void {
    if (this.#followerName === null || this.#markersThrough !== null || this.#shipped.seq === 0) return;
    const moved = this.#shipped.seq !== this.#registeredSeq;
    const sinceMs = Date.now() - this.#registeredAtMs;
    if (moved ? !now && sinceMs < REGISTER_INTERVAL_MS : sinceMs < REGISTER_REFRESH_MS) return;
    this.#registeredAtMs = Date.now();
    try {
      this.#source.register?.(this.#followerName, this.#shipped);
      this.#registeredSeq = this.#shipped.seq;
    } catch {
      // No write access to the journal directory: pruning does not hold back for this shipper.
    }
  }

  /**
   * The journal pruned entries after the shipped one (this shipper was past the hold limits): the stream
   * cannot get them any more. Tells so (HISTORY_PRUNED), uploads the base checkpoint's snapshot, and
   * publishes a pruned marker for each missing entry up to the base, so that message n stays entry n;
   * followers that read a marker rebase on that checkpoint (as on a local pruned journal).
   */
  async #rebaseStream(head: Position, pruned: ChangetrailError<'HISTORY_PRUNED'>): Promise<void> {
    const journal = openJournal(this.#dir, head);
    const base = journal.base;
    if (base === null) throw pruned;
    const basePosition = journal.positionAt(base.seq);
    const fromSeq = (this.#markersThrough ?? this.#shipped.seq) + 1;
    tellNatsEvent(this.#options, {
      kind: 'pruned', code: 'HISTORY_PRUNED', seq: fromSeq, earliestSeq: base.seq + 1, checkpointSeq: base.checkpointSeq,
      reason: pruned.message,
    });
    const checkpoint = journal.entry(base.checkpointSeq);
    if (checkpoint.kind !== 'checkpoint' || checkpoint.snapshot === undefined) throw pruned;
    await this.#ensureSnapshot(checkpoint.snapshot, basePosition, false);
    const inflight: { seq: number; ack: Promise<PubAck> }[] = [];
    const settle = async (item: { seq: number; ack: Promise<PubAck> }): Promise<void> => {
      let ack: PubAck;
      try {
        ack = await item.ack;
      } catch (cause) {
        throw publishFailure(this.#nats.description, item.seq, cause);
      }
      if (ack.seq !== item.seq) {
        throw new ChangetrailError('NATS_STREAM_FENCED', `ship to ${this.#nats.description}: the pruned marker of entry ${item.seq} was stored as message ${ack.seq}`, {
          stream: this.#nats.stream, seq: item.seq, reason: 'stored out of place',
        });
      }
      this.#markersThrough = item.seq;
    };
    try {
      for (let seq = fromSeq; seq <= base.seq && !this.#stop.signal.aborted; seq++) {
        const ack = this.#nats.js.publish(this.#nats.subject, new Uint8Array(0), {
          msgID: `pruned-${head.journalId}-${seq}`, expect: { lastSequence: seq - 1, streamName: this.#nats.stream },
          headers: prunedMarkerHeaders(head.journalId, seq, base.seq, base.checkpointSeq), timeout: this.#nats.timeoutMs,
        });
        ack.catch(() => undefined);
        inflight.push({ seq, ack });
        if (inflight.length >= this.#options.inflightMax) await settle(inflight.shift()!);
      }
      while (inflight.length > 0) await settle(inflight.shift()!);
    } catch (error) {
      await Promise.allSettled(inflight.map((item) => item.ack));
      throw error;
    }
    if (this.#stop.signal.aborted) return;
    this.#markersThrough = null;
    this.#shipped = basePosition;
    this.#cursor = null;
    this.#register(true);
  }

  /** The entry's frame bytes as they are in the journal (the journal's own reader verified them). */
  /**
   * The entry's frame, byte for byte as the journal holds it. The cursor verified the entry, from its
   * segment or, when the writer has not appended it yet, from the database's outbox (FORMAT.md §7.1);
   * bodies are canonical, so the frame is rebuilt from the entry and must hash to the entry's hash. So
   * the shipper never waits for the writer's background append (reading the segment right after COMMIT
   * found a torn tail and retried after 100 ms), and reads nothing twice.
   */
  #frameOf(entry: JournalEntry): Uint8Array {
    let body: Uint8Array;
    try {
      body = encodeEntryBody(entry);
    } catch {
      return this.#readFrame(entry);
    }
    if (Buffer.compare(hashEntryBody(body), entry.hash) === 0) return encodeFrame(entry.seq, body);
    return this.#readFrame(entry);
  }

  #readFrame(entry: JournalEntry): Uint8Array {
    const firstSeq = parseSegmentName(entry.file)!;
    if (this.#segment === null || this.#segment.name !== entry.file) {
      this.#segment?.close();
      this.#segment = SegmentFile.open(this.#dir, firstSeq, false);
      if (this.#segment === null) throw new ChangetrailError('JOURNAL_BEHIND_DATABASE', `ship: segment ${entry.file} disappeared`, { databaseSeq: entry.seq, journalSeq: entry.seq - 1, file: entry.file });
    }
    const frame = this.#segment.readFrame(entry.offset);
    const bytes = this.#segment.readBytes(entry.offset, frame.size);
    if (frame.seq !== entry.seq || Buffer.from(hashEntryBody(frame.body)).toString('hex') !== Buffer.from(entry.hash).toString('hex')) {
      throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `ship: the frame of entry ${entry.seq} changed under the reader`, { seq: entry.seq, file: entry.file });
    }
    return bytes;
  }

  #cursorTo(head: Position): JournalCursor {
    const kept = this.#cursor;
    if (kept !== null && kept.position.seq === this.#shipped.seq && kept.position.hash === this.#shipped.hash) {
      kept.advance(head);
      return kept;
    }
    this.#cursor = openJournal(this.#dir, head).cursorAfter(this.#shipped);
    return this.#cursor;
  }

  #tellRetry(error: ChangetrailError, attempt: number, delayMs: number): void {
    tellNatsEvent(this.#options, { kind: 'retry', code: error.code, reason: error.message, attempt, delayMs });
  }

  /** Reads the stream's last message, verifies it against the local journal, and continues after it. */
  async #resume(reason: string): Promise<void> {
    this.#resumes += 1;
    this.#cursor = null;
    this.#readHead();
    const previousSeq = this.#markersThrough ?? this.#shipped.seq;
    this.#markersThrough = null;
    const last = await this.#lastMessage();
    if (last === null) {
      this.#shipped = this.#root;
      tellNatsEvent(this.#options, { kind: 'resumed', seq: 0, previousSeq, reason });
      return;
    }
    const journal = openJournal(this.#dir, this.#head);
    if (prunedMarkerOf(last.header, last.seq) !== null) return this.#resumeAtMarker(journal, last.seq, previousSeq, reason);
    const frame = objectNameOf(last.header) === null ? last.data : await this.#readObject(objectNameOf(last.header)!);
    let received;
    try {
      received = decodeEntryMessage(frame, last.header, last.seq, this.#root.journalId, null, this.#nats.description);
    } catch (cause) {
      throw streamMismatch(this.#nats, ChangetrailError.is(cause, 'JOURNAL_MISMATCH') ? 'other-journal' : 'not-changetrail', last.seq, null, null, cause);
    }
    if (received.seq > this.#head.seq) throw streamMismatch(this.#nats, 'ahead', received.seq, received.hash, null);
    if (journal.base !== null && received.seq < journal.base.seq) {
      // This journal pruned that entry: it can no longer be compared; the re-base publishes markers after it.
      this.#shipped = positionOf(this.#root.journalId, received.seq, received.hash);
      tellNatsEvent(this.#options, { kind: 'resumed', seq: received.seq, previousSeq, reason: `${reason}; entry ${received.seq} was pruned here, not compared` });
      return;
    }
    const local = journal.positionAt(received.seq);
    if (local.hash !== received.hash) throw streamMismatch(this.#nats, 'diverged', received.seq, received.hash, local.hash);
    this.#shipped = local;
    tellNatsEvent(this.#options, { kind: 'resumed', seq: local.seq, previousSeq, reason });
  }

  /** The stream ends with a pruned marker: a re-base stopped half-way (or finished, at the base). */
  #resumeAtMarker(journal: Journal, seq: number, previousSeq: number, reason: string): void {
    const base = journal.base;
    if (base === null || seq > base.seq) throw streamMismatch(this.#nats, 'diverged', seq, null, journal.positionAt(seq).hash);
    if (seq === base.seq) {
      this.#shipped = journal.positionAt(base.seq);
    } else {
      this.#shipped = this.#root;
      this.#markersThrough = seq;
    }
    tellNatsEvent(this.#options, { kind: 'resumed', seq, previousSeq, reason: `${reason}; message ${seq} is a pruned marker` });
  }

  async #lastMessage(): Promise<{ seq: number; data: Uint8Array; header: MsgHdrs } | null> {
    const { jsm, stream } = this.#nats;
    const info = await natsAwait(this.#nats, 'read the stream', () => jsm.streams.info(stream));
    if (info.state.last_seq === 0) return null;
    const message = await natsAwait(this.#nats, 'read the stream', () => jsm.streams.getMessage(stream, { seq: info.state.last_seq }));
    if (message === null) {
      throw new ChangetrailError('NATS_STREAM_MISMATCH', `ship to ${this.#nats.description}: the stream's last message ${info.state.last_seq} is gone (removed by its limits)`, {
        stream, reason: 'unverifiable', seq: info.state.last_seq, streamHash: null, journalHash: null,
      });
    }
    return { seq: message.seq, data: message.data, header: message.header };
  }

  async #readObject(name: string): Promise<Uint8Array> {
    const bytes = await readObject(this.#nats, this.#bucket!, name);
    if (bytes === null) throw new ChangetrailError('NATS_OBJECT_MISSING', `read ${this.#nats.bucket}/${name}: no such object`, { bucket: this.#nats.bucket, name });
    return bytes;
  }

  /** Refuses to start while another shipper answers on the stream's claim subject; then answers itself. */
  async #claimStream(): Promise<void> {
    const subject = `changetrail.${this.#nats.stream}.shipper`;
    try {
      const reply = await this.#nats.nc.request(subject, '', { timeout: CLAIM_TIMEOUT_MS });
      const holder = reply.string();
      throw new ChangetrailError('NATS_STREAM_FENCED', `ship to ${this.#nats.description}: another shipper is active (${holder})`, {
        stream: this.#nats.stream, reason: 'another shipper is active', holder,
      });
    } catch (error) {
      if (error instanceof ChangetrailError) throw error;
      // No responders (or no answer in time): nobody ships here now.
    }
    const me = JSON.stringify({ host: hostname(), pid: process.pid, database: this.#source.description, sinceMs: Date.now() });
    this.#claim = this.#nats.nc.subscribe(subject, { callback: (_error, message) => {
      message.respond(me);
    } });
    await natsAwait(this.#nats, 'claim the stream', () => this.#nats.nc.flush());
  }

  async #ensureStream(): Promise<void> {
    const { jsm, stream, subject } = this.#nats;
    const info = await natsAwait(this.#nats, 'read stream info', () => jsm.streams.info(stream).catch((error: unknown) => {
      if (error instanceof JetStreamApiError && error.code === 10059) return null;
      throw error;
    }));
    if (info === null) {
      await natsAwait(this.#nats, 'create the stream', () => jsm.streams.add(streamConfig(stream, subject, this.#options.replicas)));
    } else if (!info.config.subjects?.includes(subject)) {
      throw new ChangetrailError('NATS_STREAM_MISMATCH', `ship to ${this.#nats.description}: stream ${stream} exists but does not take ${subject} (not a changetrail stream)`, {
        stream, reason: 'not-changetrail', seq: null, streamHash: null, journalHash: null,
      });
    }
  }

  /** The journal's manifest (its identity and chain root) is the bucket's first object; another one refuses. */
  async #ensureManifest(): Promise<void> {
    const bytes = encodeManifest(this.#identity.manifest);
    const stored = await readObject(this.#nats, this.#bucket!, MANIFEST_OBJECT);
    if (stored === null) {
      await natsAwait(this.#nats, 'upload the manifest', () => this.#bucket!.putBlob({ name: MANIFEST_OBJECT, metadata: { journalId: this.#root.journalId } }, bytes));
      return;
    }
    if (Buffer.compare(Buffer.from(stored), Buffer.from(bytes)) !== 0) {
      throw streamMismatch(this.#nats, 'other-journal', 0, null, this.#root.hash);
    }
  }

  /**
   * Uploads a snapshot file unless the bucket already holds it with the same digest. `optional`: a
   * checkpoint's snapshot that a later prune removed (it holds a state before the base) is skipped.
   */
  async #ensureSnapshot(ref: { file: string; sha256: Uint8Array; size: number }, position: Position, optional: boolean): Promise<void> {
    const existing = await natsAwait(this.#nats, `read ${this.#nats.bucket}/${ref.file}`, () => this.#bucket!.info(ref.file));
    if (existing !== null && !existing.deleted && existing.digest === objectDigest(ref.sha256) && existing.size === ref.size) return;
    const path = join(this.#dir, ref.file);
    if (optional && !existsSync(path)) return;
    const stream = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    // No overall deadline for a file of any size: each chunk's publish has the request timeout.
    const info = await this.#bucket!.put({ name: ref.file, metadata: { seq: String(position.seq), hash: position.hash, journalId: position.journalId } }, stream);
    if (info.digest !== objectDigest(ref.sha256) || info.size !== ref.size) {
      throw new ChangetrailError('JOURNAL_CHECKSUM_MISMATCH', `ship ${ref.file}: the file does not match the digest the journal records`, { file: ref.file, offset: 0 });
    }
  }
}

/** The stream a shipper creates: limits retention, file storage, no deletes or purges (recipe: replicas/nats/). */
export function streamConfig(stream: string, subject: string, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: stream, subjects: [subject], retention: 'limits' as never, storage: 'file' as never, num_replicas: replicas,
    discard: 'old' as never, deny_delete: true, deny_purge: true, allow_direct: true,
    duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000, max_msg_size: -1,
  };
}

function publishFailure(description: string, seq: number, cause: unknown): ChangetrailError {
  if (cause instanceof JetStreamApiError && (cause.code === 10071 || cause.code === 10164)) {
    return new ChangetrailError('NATS_STREAM_FENCED', `ship entry ${seq} to ${description}: the stream's last message is not entry ${seq - 1} (${cause.message})`, {
      stream: description, seq, reason: 'wrong last sequence',
    }, { cause });
  }
  return natsUnavailable(description, `publish entry ${seq}`, cause);
}

function streamMismatch(nats: NatsHandles, reason: 'other-journal' | 'diverged' | 'ahead' | 'not-changetrail', seq: number, streamHash: string | null, journalHash: string | null, cause?: unknown): ChangetrailError {
  const what = {
    'other-journal': 'holds another journal',
    diverged: `holds a different entry ${seq} than this journal (another history)`,
    ahead: `holds entry ${seq}, past this journal's head (a stale copy of the primary?)`,
    'not-changetrail': `holds message ${seq} that is not a changetrail entry`,
  }[reason];
  return new ChangetrailError('NATS_STREAM_MISMATCH', `ship to ${nats.description}: the stream ${what}; refusing to append`, {
    stream: nats.stream, reason, seq, streamHash, journalHash,
  }, { cause });
}

/** A lost connection, a timeout, a fenced publish: worth a resume. Divergence and damage are not. */
function isRetryable(error: unknown): boolean {
  return ChangetrailError.is(error, 'NATS_UNAVAILABLE') || (ChangetrailError.is(error, 'NATS_STREAM_FENCED') && error.details.reason === 'wrong last sequence')
    || ChangetrailError.is(error, 'JOURNAL_TORN_TAIL') || ChangetrailError.is(error, 'HISTORY_PRUNED') || isBusy(error);
}

function isBusy(error: unknown): boolean {
  const errcode = ChangetrailError.is(error, 'SQLITE_ERROR') ? error.details.errcode : undefined;
  return typeof errcode === 'number' && ((errcode & 0xff) === 5 || (errcode & 0xff) === 6);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolvePause) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolvePause();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
