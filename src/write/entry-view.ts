/** The public shape of a journal entry, as returned by `trail.write` and `trail.entries`. */
import { toHex } from '../journal/bytes.js';
import type { EntryBody, EntryKind, JsonValue, TableCounts } from '../journal/entry.js';

export interface Entry {
  seq: number;
  kind: EntryKind;
  /** SHA-256 of the entry's encoded body, hex. */
  hash: string;
  /** Hash of the previous entry (for entry 1: of the journal manifest), hex. */
  prevHash: string;
  time: Date;
  /** Admission epoch of the writer (the fencing token). */
  epoch: number;
  actor: string | null;
  message: string | null;
  meta: Record<string, JsonValue> | null;
  /** Per-table counts of inserted, updated and deleted rows. */
  tables: TableCounts[];
  /** Schema entries: the migration SQL. */
  sql?: string;
  /** Undo entries: the entry this one reverses. */
  undoes?: number;
  /** Resync entries: the snapshot in the journal directory that is the new base state (sha256 in hex); checkpoint entries: the state as of `at`. */
  snapshot?: { file: string; sha256: string; size: number };
  /** Checkpoint entries: the entry whose state the snapshot holds (hash in hex). */
  at?: { seq: number; hash: string };
}

/** An entry together with its SQLite changeset. */
export interface EntryWithChangeset extends Entry {
  changeset: Uint8Array;
  /** Rowids of keyed rowid tables (journal/FORMAT.md §6.1), to pass to the exact apply; absent when none. */
  rowids?: Uint8Array;
}

export function toEntry(body: EntryBody, hash: Uint8Array): Entry {
  const entry: Entry = {
    seq: body.seq, kind: body.kind, hash: toHex(hash), prevHash: toHex(body.prevHash), time: new Date(body.time),
    epoch: body.epoch, actor: body.actor, message: body.message, meta: body.meta, tables: body.tables,
  };
  if (body.sql !== undefined) entry.sql = body.sql;
  if (body.undoes !== undefined) entry.undoes = body.undoes;
  if (body.snapshot !== undefined) entry.snapshot = { file: body.snapshot.file, sha256: toHex(body.snapshot.sha256), size: body.snapshot.size };
  if (body.at !== undefined) entry.at = { seq: body.at.seq, hash: toHex(body.at.hash) };
  return entry;
}

export function toEntryWithChangeset(body: EntryBody, hash: Uint8Array): EntryWithChangeset {
  return { ...toEntry(body, hash), changeset: body.changeset, ...(body.rowids === undefined ? {} : { rowids: body.rowids }) };
}
