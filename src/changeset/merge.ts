/**
 * Merging two changes to one row, on raw record bytes (`sessionChangeMerge`, `sessionMergeRecord`,
 * `sessionMergeUpdate`; reference §3.1 and §3.2). Records were validated when they were added.
 */
import { OP_DELETE, OP_INSERT, OP_UPDATE, TYPE_UNDEFINED } from './format.js';
import { copyBytes } from './copy-bytes.js';
import { NO_ENTRY, type EntryStore } from './entry-store.js';
import { fieldOffsets, hashPk, rangesEqual, skipFields } from './record.js';

/** What merging needs to know about a table. */
export interface MergeTable {
  readonly columnCount: number;
  readonly isPk: Uint8Array;
  readonly pkFieldCount: number;
  /** Scratch: room for the field offsets of four records of `columnCount` fields. */
  readonly offsets: Int32Array;
  /** Scratch: the four record buffers of mergeUpdate (see `setRecords`). */
  readonly records: (Uint8Array | null)[];
  /** Scratch: per column, the record slot mergeUpdate takes the new value from (-1: unchanged). */
  readonly choices: Int32Array;
}

/**
 * Merged records are written into chunks instead of one allocation per record. Chunks start small so
 * that combining small changesets stays cheap, and double up to 1 MiB.
 */
const ARENA_CHUNK_SIZE_MIN = 4096;
const ARENA_CHUNK_SIZE_MAX = 1 << 20;

/** Bump allocator for merged records, registering each chunk as a source of the entry store. */
export class Arena {
  bytes = new Uint8Array(0);
  source = -1;
  used = 0;
  readonly #store: EntryStore;

  constructor(store: EntryStore) {
    this.#store = store;
  }

  /** Ensures `sizeMax` free bytes in the current chunk; returns the offset to write at. */
  begin(sizeMax: number): number {
    if (this.used + sizeMax > this.bytes.length) {
      const chunkSize = Math.min(ARENA_CHUNK_SIZE_MAX, Math.max(ARENA_CHUNK_SIZE_MIN, 2 * this.bytes.length));
      this.bytes = new Uint8Array(Math.max(chunkSize, sizeMax));
      this.source = this.#store.addSource(this.bytes);
      this.used = 0;
    }
    return this.used;
  }
}

/**
 * The entry that replaces existing entry `e` after incoming entry `n` (same row), or NO_ENTRY if they cancel
 * out. Returns `e` itself when SQLite keeps it (the unsupported sequences INSERT+INSERT, UPDATE+INSERT,
 * DELETE+UPDATE and DELETE+DELETE, S:6240-6250).
 */
export function mergeChanges(table: MergeTable, patchset: boolean, store: EntryStore, arena: Arena, e: number, n: number): number {
  const first = store.op[e]!;
  const second = store.op[n]!;
  if (second === OP_INSERT ? first !== OP_DELETE : first === OP_DELETE) return e;
  if (first === OP_INSERT && second === OP_DELETE) return NO_ENTRY;
  const indirect = store.indirect[e]! & store.indirect[n]!;
  if (first === OP_INSERT) {
    const right = patchset ? store.start[n]! : skipFields(store.bytesOf(n), store.start[n]!, table.columnCount);
    const merged = mergeRecord(table, store, arena, e, store.start[e]!, n, right, OP_INSERT, indirect);
    // A changeset UPDATE whose new.* holds PK values (never written by SQLite) changes the PK bytes.
    store.hash[merged] = hashPk(arena.bytes, store.start[merged]!, table.isPk, false, table.pkFieldCount);
    return merged;
  }
  if (first === OP_DELETE) return mergeDeleteInsert(table, patchset, store, arena, e, n, indirect);
  if (second === OP_UPDATE) return mergeUpdateUpdate(table, patchset, store, arena, e, n, indirect);
  // UPDATE + DELETE: the DELETE's old.* values, replaced by E's old values where E has them.
  if (patchset) return retag(store, n, OP_DELETE, indirect);
  return mergeRecord(table, store, arena, n, store.start[n]!, e, store.start[e]!, OP_DELETE, indirect);
}

/** Reuses incoming entry `n` (not linked anywhere yet) with another op and indirect flag. */
function retag(store: EntryStore, n: number, op: number, indirect: number): number {
  store.op[n] = op;
  store.indirect[n] = indirect;
  return n;
}

function mergeDeleteInsert(table: MergeTable, patchset: boolean, store: EntryStore, arena: Arena, e: number, n: number, indirect: number): number {
  // A patchset has no old values to compare: the INSERT record becomes the UPDATE record (S:6302-6307).
  if (patchset) return retag(store, n, OP_UPDATE, indirect);
  const { offsets, columnCount } = table;
  const stride = columnCount + 1;
  fieldOffsets(store.bytesOf(e), store.start[e]!, columnCount, offsets, 0);
  fieldOffsets(store.bytesOf(n), store.start[n]!, columnCount, offsets, 2 * stride);
  setRecords(table, store.bytesOf(e), null, store.bytesOf(n), null);
  return mergeUpdate(table, store, arena, store.hash[n]!, indirect, sizeOf(store, e) + sizeOf(store, n));
}

function mergeUpdateUpdate(table: MergeTable, patchset: boolean, store: EntryStore, arena: Arena, e: number, n: number, indirect: number): number {
  if (patchset) return mergeRecord(table, store, arena, e, store.start[e]!, n, store.start[n]!, OP_UPDATE, indirect);
  const { offsets, columnCount } = table;
  const stride = columnCount + 1;
  const eBytes = store.bytesOf(e);
  const nBytes = store.bytesOf(n);
  // Slots: old1 = N.old, old2 = E.old, new1 = E.new, new2 = N.new (S:6323).
  const eNew = fieldOffsets(eBytes, store.start[e]!, columnCount, offsets, stride);
  fieldOffsets(eBytes, eNew, columnCount, offsets, 2 * stride);
  const nNew = fieldOffsets(nBytes, store.start[n]!, columnCount, offsets, 0);
  fieldOffsets(nBytes, nNew, columnCount, offsets, 3 * stride);
  setRecords(table, nBytes, eBytes, eBytes, nBytes);
  return mergeUpdate(table, store, arena, store.hash[n]!, indirect, sizeOf(store, e) + sizeOf(store, n));
}

/** Fills the scratch slots old1, old2, new1, new2 (reused: no array per merge). */
function setRecords(table: MergeTable, old1: Uint8Array, old2: Uint8Array | null, new1: Uint8Array, new2: Uint8Array | null): void {
  const { records } = table;
  records[0] = old1;
  records[1] = old2;
  records[2] = new1;
  records[3] = new2;
}

function sizeOf(store: EntryStore, entry: number): number {
  return store.end[entry]! - store.start[entry]!;
}

/**
 * `sessionMergeUpdate` for changesets. `table.records` holds the buffers of old1, old2, new1, new2, whose
 * field offsets are in `table.offsets` slots 0..3 (null = absent record). Per column, o = old2 if defined
 * else old1, n = new2 if defined else new1. old.* keeps o where the column is a PK or o != n; new.*
 * keeps n where the column is not a PK and o != n. NO_ENTRY if no non-PK column differs.
 */
function mergeUpdate(table: MergeTable, store: EntryStore, arena: Arena, hash: number, indirect: number, sizeMax: number): number {
  const { offsets, columnCount, isPk, choices, records: sources } = table;
  const stride = columnCount + 1;
  const start = arena.begin(sizeMax);
  const target = arena.bytes;
  let at = start;
  let required = false;
  for (let column = 0; column < columnCount; column++) {
    const oldSlot = pick(sources, offsets, 1, 0, stride, column);
    const newSlot = pick(sources, offsets, 3, 2, stride, column);
    const oldAt = oldSlot * stride + column;
    const newAt = newSlot * stride + column;
    const same = rangesEqual(sources[oldSlot]!, offsets[oldAt]!, offsets[oldAt + 1]!, sources[newSlot]!, offsets[newAt]!, offsets[newAt + 1]!);
    choices[column] = same ? -1 : newSlot;
    if (isPk[column] === 1 || !same) {
      required ||= isPk[column] === 0;
      at = copyBytes(sources[oldSlot]!, offsets[oldAt]!, offsets[oldAt + 1]!, target, at);
    } else {
      target[at++] = TYPE_UNDEFINED;
    }
  }
  if (!required) return NO_ENTRY;
  // new.*: the chosen new value where the column is not a PK and the values differ (first pass).
  for (let column = 0; column < columnCount; column++) {
    const newSlot = choices[column]!;
    const newAt = newSlot * stride + column;
    if (isPk[column] === 1 || newSlot < 0) target[at++] = TYPE_UNDEFINED;
    else at = copyBytes(sources[newSlot]!, offsets[newAt]!, offsets[newAt + 1]!, target, at);
  }
  arena.used = at;
  return store.add(OP_UPDATE, indirect, arena.source, start, at, hash);
}

/** Slot `preferred` if that record is present and defines the column, else slot `fallback`. */
function pick(sources: (Uint8Array | null)[], offsets: Int32Array, preferred: number, fallback: number, stride: number, column: number): number {
  const bytes = sources[preferred];
  if (bytes === null || bytes === undefined) return fallback;
  return bytes[offsets[preferred * stride + column]!] === TYPE_UNDEFINED ? fallback : preferred;
}

/**
 * `sessionMergeRecord`: per column the right record's field if defined, else the left's. The left
 * record starts at `leftStart` in entry `left`'s buffer, the right one at `rightStart` in `right`'s.
 * The new entry gets `right`'s hash (the PK bytes are equal) unless the caller recomputes it.
 */
function mergeRecord(
  table: MergeTable, store: EntryStore, arena: Arena, left: number, leftStart: number, right: number, rightStart: number,
  op: number, indirect: number,
): number {
  const { offsets, columnCount } = table;
  const stride = columnCount + 1;
  const leftBytes = store.bytesOf(left);
  const rightBytes = store.bytesOf(right);
  fieldOffsets(leftBytes, leftStart, columnCount, offsets, 0);
  fieldOffsets(rightBytes, rightStart, columnCount, offsets, stride);
  const start = arena.begin(sizeOf(store, left) + sizeOf(store, right));
  const target = arena.bytes;
  let at = start;
  for (let column = 0; column < columnCount; column++) {
    const rightAt = stride + column;
    if (rightBytes[offsets[rightAt]!] !== TYPE_UNDEFINED) at = copyBytes(rightBytes, offsets[rightAt]!, offsets[rightAt + 1]!, target, at);
    else at = copyBytes(leftBytes, offsets[column]!, offsets[column + 1]!, target, at);
  }
  arena.used = at;
  return store.add(op, indirect, arena.source, start, at, store.hash[right]!);
}
