/**
 * The outbox (journal/FORMAT.md §7.1): entry frames committed inside the database, in the same SQLite
 * transaction as the user's changes and the head row, before their bytes reach a segment. A writer appends
 * each frame to its segment after COMMIT and deletes the row once the segment bytes are durable; until
 * then a reader that finds the segments behind the committed head takes the missing frames from here,
 * through the same checks as segment frames (CRC, seq, then the chain to the head).
 *
 * Rule that makes reading safe without one snapshot for head and outbox: a row is deleted only after its
 * frame is in its segment (and durable). So outbox rows read at any time after the head was read cover
 * every committed entry the segments do not hold yet.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, fromHex } from './bytes.js';
import { decodeEntryBody, hashEntryBody } from './entry.js';
import { FRAME_HEADER_SIZE, SEGMENT_HEADER_SIZE } from './format.js';
import { decodeFrame } from './frame.js';
import { withSeq } from './journal-reader.js';
import { positionOf, type Position } from './position.js';
import { formatSegmentName } from './segment.js';

export const OUTBOX_TABLE = '_changetrail_outbox';

/** At most this many rows are read at once (a writer keeps the outbox to the frames of a few fsyncs). */
export const OUTBOX_ROWS_MAX = 1_000_000;

export const CREATE_OUTBOX_TABLE = `CREATE TABLE IF NOT EXISTS ${OUTBOX_TABLE} (
  seq INTEGER PRIMARY KEY,
  segment INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  frame BLOB NOT NULL
)`;

/** One committed frame and where it belongs: segment `segment` (its first seq), byte `offset`. */
export interface OutboxFrame {
  readonly seq: number;
  readonly segment: number;
  readonly offset: number;
  /** The whole frame (header and body), exactly the bytes the segment holds or will hold. */
  readonly frame: Uint8Array;
}

/** Reads the outbox when a reader needs it (lazily: the segments usually hold everything). */
export type OutboxSource = () => readonly OutboxFrame[];

/** The subset of a SQLite connection the outbox needs. */
interface Connection {
  prepare(sql: string): { get(...params: never[]): Record<string, unknown> | undefined; all(...params: never[]): Record<string, unknown>[] };
}

/** Whether the database has an outbox table (databases of head-row format 1 have none). */
export function outboxTableExists(db: Connection | DatabaseSync): boolean {
  return (db as Connection).prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = '${OUTBOX_TABLE}'`).get() !== undefined;
}

/**
 * Every outbox row, in seq order, each frame verified (CRC, and the frame names the row's seq) and each
 * position checked. A row that fails is corrupt committed data: JOURNAL_CHECKSUM_MISMATCH or JOURNAL_MALFORMED.
 */
export function readOutbox(db: Connection | DatabaseSync): OutboxFrame[] {
  if (!outboxTableExists(db)) return [];
  const rows = (db as Connection).prepare(`SELECT seq, segment, offset, frame FROM ${OUTBOX_TABLE} ORDER BY seq LIMIT ${OUTBOX_ROWS_MAX + 1}`).all();
  if (rows.length > OUTBOX_ROWS_MAX) throw malformed(0, `more than ${OUTBOX_ROWS_MAX} rows`);
  return rows.map(decodeOutboxRow);
}

/** Checks one row as stored: integer positions, a frame whose CRC holds and whose seq is the row's. */
export function decodeOutboxRow(row: Record<string, unknown>): OutboxFrame {
  const seq = row.seq;
  const segment = row.segment;
  const offset = row.offset;
  const frame = row.frame;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) throw malformed(0, 'seq is not a positive integer');
  if (typeof segment !== 'number' || !Number.isSafeInteger(segment) || segment < 1 || segment > seq) throw malformed(seq, 'segment out of range');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < SEGMENT_HEADER_SIZE) throw malformed(seq, 'offset out of range');
  if (!(frame instanceof Uint8Array)) throw malformed(seq, 'frame is not a blob');
  if (segment === seq && offset !== SEGMENT_HEADER_SIZE) throw malformed(seq, 'first frame of a segment not at its start');
  const file = formatSegmentName(segment);
  let decoded;
  try {
    decoded = decodeFrame(frame, file, offset);
  } catch (error) {
    throw withSeq(error, seq);
  }
  if (decoded.size !== frame.byteLength) throw malformed(seq, 'bytes after the frame');
  if (decoded.seq !== seq) throw malformed(seq, `frame holds entry ${decoded.seq}`);
  return { seq, segment, offset, frame: new Uint8Array(frame) };
}

function malformed(seq: number, reason: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_MALFORMED', `read ${OUTBOX_TABLE}: row ${seq}: ${reason}`, {
    file: OUTBOX_TABLE, offset: 0, ...(seq > 0 ? { seq } : {}), reason,
  });
}

/**
 * The position the segments must hold through when the outbox holds the head's frame: the entry before
 * the outbox's contiguous run ending at `head`. That run is verified here (frame CRCs, contiguous seqs,
 * each body naming the previous entry, the last one hashing to the head). Without a row for the head,
 * the segments must hold everything: `head` itself.
 *
 * @throws ChangetrailError JOURNAL_CHAIN_BROKEN, JOURNAL_MALFORMED.
 */
export function segmentsHeadBelowOutbox(head: Position, rows: readonly OutboxFrame[]): Position {
  const bySeq = new Map(rows.map((row) => [row.seq, row]));
  if (!bySeq.has(head.seq)) return head;
  let first = head.seq;
  while (bySeq.has(first - 1)) first -= 1;
  let prevHash: Uint8Array | null = null;
  let firstPrevHash: Uint8Array | null = null;
  for (let seq = first; seq <= head.seq; seq++) {
    const row = bySeq.get(seq)!;
    const file = formatSegmentName(row.segment);
    const bodyBytes = row.frame.subarray(FRAME_HEADER_SIZE);
    const body = decodeEntryBody(bodyBytes, file, row.offset, seq);
    if (body.seq !== seq) throw malformed(seq, `body holds entry ${body.seq}`);
    if (prevHash !== null && !bytesEqual(body.prevHash, prevHash)) {
      throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${OUTBOX_TABLE}: entry ${seq} does not chain to entry ${seq - 1}`, { seq, file: OUTBOX_TABLE });
    }
    firstPrevHash ??= body.prevHash;
    prevHash = hashEntryBody(bodyBytes);
  }
  if (!bytesEqual(prevHash!, fromHex(head.hash))) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${OUTBOX_TABLE}: entry ${head.seq} is not the entry the database committed`, { seq: head.seq, file: OUTBOX_TABLE });
  }
  return positionOf(head.journalId, first - 1, firstPrevHash!);
}
