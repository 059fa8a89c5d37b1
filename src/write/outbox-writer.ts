/**
 * The writer's side of the outbox protocol (journal/FORMAT.md §7.1, journal/LOCK.md "Write protocol"):
 *
 *   in the transaction: INSERT the frame into `_changetrail_outbox`, DELETE rows already durable in
 *   their segments, UPDATE the head row → COMMIT → append the frame to its segment → fdatasync the
 *   segment in the background, one fsync covering every frame appended while the previous one ran.
 *
 * An entry is durable once COMMIT returns (the database's own fsync); the segment catches up after. Rows
 * are deleted only by a later fenced transaction and only after an fsync that started once their bytes
 * were in the segment, so the outbox always covers what the segments may lack. Frames larger than
 * {@link OUTBOX_FRAME_BYTES_MAX} take the direct path instead (appended and fsynced before COMMIT).
 */
import { fdatasync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import { CREATE_OUTBOX_TABLE, OUTBOX_TABLE, outboxTableExists, readOutbox, type OutboxFrame } from '../journal/outbox.js';
import { readBase } from '../journal/retention-base.js';
import { SegmentFile } from '../journal/segment-file.js';
import { formatSegmentName } from '../journal/segment.js';
import { io } from '../journal/files.js';
import { crashesHere, crashpoint, faultpoint } from './crashpoint.js';
import { HEAD_TABLE, HEAD_TABLE_FORMAT } from './head-row.js';

/**
 * Frames up to this size go through the outbox; larger ones are appended and fsynced before COMMIT.
 * Through the outbox a frame is written twice (into the database — twice again in WAL, by the
 * checkpoint — then into the segment) to save one fdatasync (≈ 0.3–1 ms here). At 256 KiB the second copy
 * costs about what the saved fsync does (see `npm run bench -- write`, "outbox threshold"); a
 * 1,000,000-row write (≈ 30 MB) keeps today's I/O. Tests lower it with CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX.
 */
export const OUTBOX_FRAME_BYTES_MAX = frameBytesMax(process.env.CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX);

/**
 * Bytes inserted into the outbox since rows last became durable, above which the next write fsyncs the
 * segment itself before COMMIT. Background fsyncs report back only when the event loop turns — between
 * bursts of writes, or every fair share (25 ms) of a long one — so this bounds the outbox of a writer that
 * never yields: one fsync per 4 MiB of frames.
 */
export const OUTBOX_PENDING_BYTES_MAX = 4 * 1024 * 1024;

/**
 * The least time between the starts of two background segment fsyncs. One fsync in flight at a time
 * already shares it between the writes appended while it runs; spacing them out as well keeps the segment
 * from doubling the disk's flushes where a commit is itself one fsync (WAL: 1.36x raw with an fsync per
 * write or two, `npm run bench -- write`). The cost is outbox rows kept that much longer (their deletion
 * waits for the fsync): about 20 ms of writes. Tests set it with CHANGETRAIL_SEGMENT_SYNC_MS.
 */
export const SEGMENT_SYNC_INTERVAL_MS = nonNegativeInteger(process.env.CHANGETRAIL_SEGMENT_SYNC_MS, 20);

/** A tuning knob from the environment (tests), `fallback` when unset or not a non-negative integer. */
export function nonNegativeInteger(value: string | undefined, fallback: number): number {
  const parsed = value === undefined || value === '' ? NaN : Number(value);
  return Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : fallback;
}

function frameBytesMax(value: string | undefined): number {
  return nonNegativeInteger(value, 256 * 1024);
}

/** A frame committed through the outbox, to be appended after COMMIT. */
export interface PendingAppend {
  readonly seq: number;
  readonly tail: SegmentFile;
  readonly offset: number;
  readonly frame: Uint8Array;
}

export class OutboxWriter {
  readonly #db: DatabaseSync;
  readonly #dir: string;
  readonly #journalId: Uint8Array;
  #insert: StatementSync | null = null;
  #delete: StatementSync | null = null;
  /** Every frame ≤ this is durable in its segment (an fsync that started after it was written completed). */
  #durableSeq = 0;
  /** Rows ≤ this were deleted by a committed transaction of this process. */
  #deletedThrough = 0;
  /** What the open transaction deletes (becomes `#deletedThrough` at COMMIT). */
  #deleting: number | null = null;
  /** After a failed fsync every row is rewritten before it may count as durable again. */
  #rewriteAll = false;
  /** Frame bytes inserted since `#durableSeq` last moved. */
  #pendingBytes = 0;
  readonly #syncer: SegmentSyncer;

  constructor(db: DatabaseSync, dir: string, journalId: Uint8Array) {
    this.#db = db;
    this.#dir = dir;
    this.#journalId = journalId;
    this.#syncer = new SegmentSyncer((seq) => {
      this.markDurable(seq);
    }, () => {
      this.#rewriteAll = true;
    });
  }

  /** Under RESERVED: creates the outbox of a database of head-row format 1 (upgrading it to format 2). */
  ensureTable(): void {
    if (this.#insert !== null) return;
    if (!outboxTableExists(this.#db)) {
      this.#db.exec(CREATE_OUTBOX_TABLE);
      this.#db.exec(`UPDATE ${HEAD_TABLE} SET format = ${HEAD_TABLE_FORMAT} WHERE id = 1`);
    }
    this.#insert = this.#db.prepare(`INSERT INTO ${OUTBOX_TABLE} (seq, segment, offset, frame) VALUES (?, ?, ?, ?)`);
    this.#delete = this.#db.prepare(`DELETE FROM ${OUTBOX_TABLE} WHERE seq <= ?`);
  }

  /** Rows of the database's outbox (read under the caller's transaction). */
  rows(): OutboxFrame[] {
    return readOutbox(this.#db);
  }

  /** Whether every row must be rewritten into its segment before anything else (an fsync failed). */
  get mustRewrite(): boolean {
    return this.#rewriteAll;
  }

  /**
   * Under RESERVED, after the fence: makes every segment hold every outbox frame (a crashed writer's
   * missing or torn append, or bytes a power loss took), comparing what is there and writing what is missing.
   * Other segments than the tail are fsynced here (rare: a rotation the crash interrupted); the tail is
   * covered by the fsync after this transaction's COMMIT.
   */
  complete(tail: SegmentFile): number {
    // Rows of entries a prune has dropped (their segments deleted) wait for their delete; nothing to complete.
    const base = readBase(this.#dir, this.#journalId);
    const rows = this.rows().filter((row) => base === null || row.seq > base.seq);
    const rewrite = this.#rewriteAll;
    let written = 0;
    const others = new Map<number, SegmentFile>();
    try {
      for (const row of rows) {
        const segment = row.segment === tail.firstSeq ? tail : openOther(this.#dir, row, others);
        if (writeIfDifferent(segment, row, rewrite)) written += 1;
      }
      for (const segment of others.values()) segment.sync();
    } finally {
      for (const segment of others.values()) segment.close();
    }
    this.#rewriteAll = false;
    if (rewrite) this.#durableSeq = 0;
    return written;
  }

  /** In the transaction: records `frame` as committed with it. */
  insert(seq: number, segment: number, offset: number, frame: Uint8Array): void {
    this.#insert!.run(seq, segment, offset, frame);
    this.#pendingBytes += frame.byteLength;
    crashpoint('after-outbox-insert');
  }

  /** In the transaction: deletes the rows whose segment bytes are durable, when there are new ones. */
  dropDurable(): void {
    if (this.#durableSeq <= this.#deletedThrough || this.#rewriteAll) return;
    this.#delete!.run(this.#durableSeq);
    this.#deleting = this.#durableSeq;
    crashpoint('after-outbox-delete');
  }

  /** Every frame through `seq` is durable (fsynced before COMMIT: the direct path, or a rotation). */
  markDurable(seq: number): void {
    if (this.#rewriteAll || seq <= this.#durableSeq) return;
    this.#durableSeq = seq;
    this.#pendingBytes = 0;
  }

  /** Whether the outbox has grown past {@link OUTBOX_PENDING_BYTES_MAX} without rows becoming durable. */
  get overdue(): boolean {
    return this.#pendingBytes > OUTBOX_PENDING_BYTES_MAX;
  }

  /** After COMMIT. */
  committed(): void {
    if (this.#deleting !== null) this.#deletedThrough = Math.max(this.#deletedThrough, this.#deleting);
    this.#deleting = null;
  }

  /** After ROLLBACK. */
  rolledBack(): void {
    this.#deleting = null;
  }

  /**
   * After COMMIT: appends the committed frame to its segment, then either starts (or queues) the
   * background group fsync ('background', for the tail), or fsyncs at once ('now', for a segment the
   * group leaves for a new one). Throws on an I/O error: the entry is committed all the same, and the next
   * writer completes the segment from the outbox.
   */
  append(pending: PendingAppend, sync: 'background' | 'now'): void {
    const { tail, frame, offset } = pending;
    if (crashesHere('mid-append')) {
      tail.writeAt(frame.subarray(0, frame.byteLength >> 1), offset);
      tail.sync();
      process.kill(process.pid, 'SIGKILL');
    }
    io('append to segment', tail.path, () => faultpoint('journal-append'));
    tail.writeAt(frame, offset);
    crashpoint('after-append');
    if (sync === 'now') tail.sync();
    else this.#syncer.schedule(tail, pending.seq);
  }

  /** Closes a segment descriptor once no fsync runs on it (closing earlier could let it be reused). */
  release(segment: SegmentFile): void {
    this.#syncer.release(segment);
  }
}

/** Opens (or, when the crash took it before its header was durable, recreates) another segment. */
function openOther(dir: string, row: OutboxFrame, open: Map<number, SegmentFile>): SegmentFile {
  const known = open.get(row.segment);
  if (known !== undefined) return known;
  const segment = SegmentFile.open(dir, row.segment, true);
  if (segment === null) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE',
      `complete journal from ${OUTBOX_TABLE}: segment ${formatSegmentName(row.segment)} holding committed entry ${row.seq} is missing`,
      { databaseSeq: row.seq, journalSeq: row.segment - 1, file: formatSegmentName(row.segment) });
  }
  open.set(row.segment, segment);
  return segment;
}

/**
 * Writes what the segment lacks of the row's frame (missing, or torn by a crash mid-append). Bytes that
 * are there must be the committed ones: a different frame is damage or tampering, never overwritten
 * (JOURNAL_CHAIN_BROKEN); a gap before the frame is lost data (JOURNAL_BEHIND_DATABASE).
 */
function writeIfDifferent(segment: SegmentFile, row: OutboxFrame, rewrite: boolean): boolean {
  const size = segment.size();
  if (size < row.offset) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE',
      `complete journal from ${OUTBOX_TABLE}: ${segment.name} ends at ${size}, before committed entry ${row.seq} at ${row.offset}`,
      { databaseSeq: row.seq, journalSeq: row.seq - 1, file: segment.name });
  }
  const present = segment.readBytes(row.offset, Math.min(row.frame.byteLength, size - row.offset));
  if (!bytesEqual(present, row.frame.subarray(0, present.byteLength))) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN',
      `complete journal from ${OUTBOX_TABLE}: ${segment.name} at ${row.offset} holds other bytes than committed entry ${row.seq}`,
      { seq: row.seq, file: segment.name });
  }
  if (present.byteLength === row.frame.byteLength && !rewrite) return false;
  segment.writeAt(row.frame, row.offset);
  return true;
}

function injectedSyncFault(): Error | null {
  try {
    faultpoint('journal-sync');
    return null;
  } catch (error) {
    return error as Error;
  }
}

/**
 * Background fdatasync of the tail segment: at most one runs at a time, and one that finishes starts the
 * next if frames were appended meanwhile, so one fsync covers a whole group of writes; starts are at least
 * SEGMENT_SYNC_INTERVAL_MS apart (a timer waits out the rest). Runs on libuv's thread pool, beside the
 * next write's transaction.
 */
class SegmentSyncer {
  readonly #onDurable: (seq: number) => void;
  readonly #onFailure: () => void;
  #running: { tail: SegmentFile; seq: number } | null = null;
  #wanted: { tail: SegmentFile; seq: number } | null = null;
  readonly #closeAfterSync = new Set<SegmentFile>();
  /** When the last fsync started (monotonic ms). */
  #startedMs = -Infinity;
  /** Waits out the interval before the next start. */
  #timer: NodeJS.Timeout | null = null;

  constructor(onDurable: (seq: number) => void, onFailure: () => void) {
    this.#onDurable = onDurable;
    this.#onFailure = onFailure;
  }

  schedule(tail: SegmentFile, seq: number): void {
    this.#wanted = { tail, seq };
    this.#startWhenDue();
  }

  #startWhenDue(): void {
    if (this.#running !== null || this.#timer !== null || this.#wanted === null) return;
    const waitMs = this.#startedMs + SEGMENT_SYNC_INTERVAL_MS - performance.now();
    if (waitMs <= 0) return this.#start();
    // Unref'd: an exiting process leaves the rows in the outbox, where the next writer finds them.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#startWhenDue();
    }, waitMs);
    this.#timer.unref();
  }

  release(segment: SegmentFile): void {
    if (this.#wanted?.tail === segment) this.#wanted = null;
    if (this.#running?.tail === segment) this.#closeAfterSync.add(segment);
    else segment.close();
  }

  #start(): void {
    const job = this.#wanted;
    this.#wanted = null;
    if (job === null) return;
    this.#running = job;
    this.#startedMs = performance.now();
    const injected = injectedSyncFault();
    const sync = injected === null ? (done: (error: Error | null) => void) => fdatasync(job.tail.fd, done) : (done: (error: Error | null) => void) => setImmediate(done, injected);
    sync((error) => {
      this.#running = null;
      if (error === null) {
        crashpoint('after-sync');
        this.#onDurable(job.seq);
      } else {
        // Never retried as if nothing happened (write-admission.md §2.5): every row is rewritten first.
        this.#onFailure();
      }
      if (this.#closeAfterSync.delete(job.tail)) job.tail.close();
      this.#startWhenDue();
    });
  }
}
