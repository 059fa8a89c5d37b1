/**
 * What the Node reader (src/journal, src/apply) makes of a vector directory, in the shape of
 * expected.json: the entries and log lines it yields up to the committed head (the `head` marker), the
 * error it then reports, and the verification (genesis and resync snapshots, every entry) as
 * `changetrail verify --json` reports it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ChangetrailError } from '../../src/errors.js';
import { toHex } from '../../src/journal/bytes.js';
import { verifyStartingState } from '../../src/journal/retention-checkpoints.js';
import { readManifest } from '../../src/journal/journal-reader.js';
import { openJournal, readCommittedHead, readHeadMarkerPosition, type Journal, type JournalEntry } from '../../src/journal/journal.js';
import { positionOf } from '../../src/journal/position.js';
import { verifySnapshot } from '../../src/apply/replay.js';
import { entryJson as entryLine } from '../../src/cli/helpers.js';
import { toJson } from '../../src/cli/output.js';
import { toEntry } from '../../src/write/entry-view.js';

export interface ReadError {
  code: string;
  seq?: number;
}

export interface VectorReading {
  entries: unknown[];
  log: unknown[];
  error: ReadError | null;
  verify: unknown;
  verifyError: ReadError | null;
}

function entryJson(entry: JournalEntry): unknown {
  return {
    seq: entry.seq, kind: entry.kind, time: entry.time, epoch: entry.epoch, actor: entry.actor, message: entry.message, meta: entry.meta,
    prevHash: toHex(entry.prevHash), tables: entry.tables, changeset: toHex(entry.changeset),
    ...(entry.sql === undefined ? {} : { sql: entry.sql }),
    ...(entry.snapshot === undefined ? {} : { snapshot: { file: entry.snapshot.file, sha256: toHex(entry.snapshot.sha256), size: entry.snapshot.size } }),
    ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
    ...(entry.rowids === undefined ? {} : { rowids: toHex(entry.rowids) }),
    ...(entry.at === undefined ? {} : { at: { seq: entry.at.seq, hash: toHex(entry.at.hash) } }),
    hash: toHex(entry.hash),
  };
}

export function readError(error: unknown): ReadError {
  if (!(error instanceof ChangetrailError)) throw error;
  const seq = (error.details as { seq?: unknown }).seq;
  return { code: error.code, ...(typeof seq === 'number' ? { seq } : {}) };
}

/**
 * The journal anchored to its committed head: the head row of `database.db` when the vector has one (its
 * outbox then holds committed frames, FORMAT.md §7.1), else its `head` marker (the chain root when none).
 */
export function openVectorJournal(dir: string): Journal {
  const identity = readManifest(dir);
  if (identity === null) throw new Error(`${dir} has no manifest`);
  const database = vectorDatabase(dir);
  if (database !== null) return openJournal(dir, readCommittedHead(database));
  const head = readHeadMarkerPosition(dir) ?? positionOf(toHex(identity.manifest.journalId), 0, identity.rootHash);
  return openJournal(dir, head);
}

/** The vector's `database.db` (head row and outbox), or null. */
export function vectorDatabase(dir: string): string | null {
  const path = join(dir, 'database.db');
  return existsSync(path) ? path : null;
}

function* committedEntries(dir: string): Generator<JournalEntry> {
  yield* openVectorJournal(dir).entries();
}

export function readVectorWithNode(dir: string): VectorReading {
  const reading: VectorReading = { entries: [], log: [], error: null, verify: null, verifyError: null };
  try {
    for (const entry of committedEntries(dir)) {
      reading.entries.push(entryJson(entry));
      reading.log.push(JSON.parse(toJson(entryLine(toEntry(entry, entry.hash)))));
    }
  } catch (error) {
    reading.error = readError(error);
  }
  try {
    const journal = openVectorJournal(dir);
    const retainedAfter = verifyStartingState(journal, (file, sha256, size) => verifySnapshot(dir, file, sha256, size));
    let count = 0;
    for (const entry of journal.entries()) {
      if (entry.snapshot !== undefined) verifySnapshot(dir, entry.snapshot.file, entry.snapshot.sha256, entry.snapshot.size);
      count += 1;
    }
    reading.verify = { headSeq: journal.head.seq, headHash: journal.head.hash, head: journal.head, entries: count, replayed: false, ...(retainedAfter === 0 ? {} : { retainedAfter }) };
  } catch (error) {
    reading.verifyError = readError(error);
  }
  return reading;
}

/** Only the fields an expected error states (a reader may add details). */
export function projectError(actual: ReadError | null, expected: ReadError | null): ReadError | null {
  if (actual === null || expected === null) return actual;
  return { code: actual.code, ...(expected.seq === undefined ? {} : { seq: actual.seq as number }) };
}

export { join };
