/**
 * The `base` file of a pruned journal (journal/FORMAT.md §11): which checkpoint retained history starts
 * from. Absent, history starts at genesis (entry 1 chains to the manifest). Present, it names a
 * checkpoint entry `checkpointSeq` whose snapshot holds the user's tables as of entry `seq`; entries
 * `seq + 1 ..` are retained, earlier ones may be gone. It is only a pointer: every field is proven by
 * the chain (the checkpoint entry names `seq`, `hash` and the snapshot digest, and chains to the head).
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `CTJB` |
 * | 4 | 2 | version (1) |
 * | 6 | 2 | flags (0) |
 * | 8 | 16 | journal id |
 * | 24 | 8 | base seq: the state the checkpoint's snapshot holds |
 * | 32 | 32 | hash of entry `seq` |
 * | 64 | 8 | seq of the checkpoint entry |
 * | 72 | 32 | SHA-256 of its snapshot `checkpoint-<checkpointSeq>.db` |
 * | 104 | 8 | size of that snapshot in bytes |
 * | 112 | 4 | reserved (0) |
 * | 116 | 4 | CRC-32 of bytes 0..115 |
 *
 * Written through a temporary file, fsync, rename and a directory fsync; it only ever moves forward.
 */
import { join } from 'node:path';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, checkHeaderChecksum, checkPreamble, checksum, readSafeU64, toHex, view } from './bytes.js';
import { checkpointFileName, type SnapshotRef } from './entry.js';
import { readSmallFile, writeFileDurably } from './files.js';
import { FORMAT_VERSION, GENESIS_FILE, HASH_SIZE, JOURNAL_ID_SIZE, MANIFEST_FILE, MANIFEST_SIZE } from './format.js';
import { decodeManifest, type Manifest } from './manifest.js';

export const BASE_FILE = 'base';
export const BASE_MAGIC = 0x43544a42; // "CTJB"
export const BASE_SIZE = 120;

assert(BASE_SIZE % 8 === 0, 'base size is a multiple of 8');

/** Where retained history starts: the checkpoint entry and the state its snapshot holds. */
export interface RetainedBase {
  /** The state the snapshot holds: entries `seq + 1 ..` are retained. */
  readonly seq: number;
  /** Hash of entry `seq` (lowercase hex). */
  readonly hash: string;
  /** The checkpoint entry naming the snapshot (`seq` < `checkpointSeq`). */
  readonly checkpointSeq: number;
  readonly snapshot: SnapshotRef;
}

export function encodeBase(journalId: Uint8Array, base: RetainedBase): Uint8Array {
  assert(journalId.byteLength === JOURNAL_ID_SIZE, 'journal id size');
  assert(base.snapshot.sha256.byteLength === HASH_SIZE, 'snapshot hash size');
  assert(Number.isSafeInteger(base.seq) && base.seq >= 1, 'base seq >= 1');
  assert(Number.isSafeInteger(base.checkpointSeq) && base.checkpointSeq > base.seq, 'checkpoint after its base');
  assert(base.snapshot.file === checkpointFileName(base.checkpointSeq), 'snapshot named after its checkpoint');
  const bytes = new Uint8Array(BASE_SIZE);
  const data = view(bytes);
  data.setUint32(0, BASE_MAGIC);
  data.setUint16(4, FORMAT_VERSION);
  bytes.set(journalId, 8);
  data.setBigUint64(24, BigInt(base.seq));
  bytes.set(Buffer.from(base.hash, 'hex'), 32);
  data.setBigUint64(64, BigInt(base.checkpointSeq));
  bytes.set(base.snapshot.sha256, 72);
  data.setBigUint64(104, BigInt(base.snapshot.size));
  data.setUint32(116, checksum(bytes.subarray(0, 116)));
  return bytes;
}

/**
 * Decodes and checks a `base` file of journal `journalId`.
 *
 * @throws ChangetrailError JOURNAL_MALFORMED (size, flags, another journal, base not before its
 *   checkpoint), JOURNAL_VERSION_UNSUPPORTED, JOURNAL_CHECKSUM_MISMATCH.
 */
export function decodeBase(bytes: Uint8Array, journalId: Uint8Array): RetainedBase {
  if (bytes.byteLength !== BASE_SIZE) throw malformed(`size ${bytes.byteLength}, expected ${BASE_SIZE}`);
  const data = view(bytes);
  checkPreamble(data, BASE_MAGIC, BASE_FILE, 'base');
  checkHeaderChecksum(bytes, 116, BASE_FILE, 'base');
  if (!bytesEqual(bytes.subarray(8, 24), journalId)) throw malformed(`names journal ${toHex(bytes.subarray(8, 24))}`);
  const seq = readSafeU64(data, 24, BASE_FILE, 'seq');
  const checkpointSeq = readSafeU64(data, 64, BASE_FILE, 'checkpointSeq');
  if (seq < 1 || checkpointSeq <= seq) throw malformed(`base ${seq} is not before its checkpoint ${checkpointSeq}`);
  return {
    seq, hash: toHex(bytes.subarray(32, 64)), checkpointSeq,
    snapshot: { file: checkpointFileName(checkpointSeq), sha256: bytes.slice(72, 104), size: readSafeU64(data, 104, BASE_FILE, 'size') },
  };
}

/** The retained base of the journal in `dir`, or null when history starts at genesis. */
export function readBase(dir: string, journalId: Uint8Array): RetainedBase | null {
  const bytes = readSmallFile(join(dir, BASE_FILE), BASE_SIZE);
  return bytes === null ? null : decodeBase(bytes, journalId);
}

/** Replaces the `base` file durably. Callers move it forward only (src/write/prune.ts). */
export function writeBase(dir: string, journalId: Uint8Array, base: RetainedBase): void {
  writeFileDurably(dir, BASE_FILE, encodeBase(journalId, base));
}

/**
 * An entry before the retained base was asked for. `earliestSeq` is the first retained entry; the state
 * at `earliestSeq - 1` is the oldest that can still be restored.
 */
export function historyPruned(operation: string, seq: number, base: RetainedBase): ChangetrailError<'HISTORY_PRUNED'> {
  return new ChangetrailError('HISTORY_PRUNED',
    `${operation}: entry ${seq} was pruned; retained history begins at entry ${base.seq + 1} (checkpoint ${base.checkpointSeq} holds the state as of entry ${base.seq})`,
    { seq, earliestSeq: base.seq + 1, baseSeq: base.seq, checkpointSeq: base.checkpointSeq });
}

/**
 * The state history starts from: genesis (seq 0, `genesis.db`) or the base checkpoint's snapshot. Every
 * consumer that starts from "the beginning" (replay, restore, schema history, audit) starts here.
 */
export function startingState(base: RetainedBase | null, manifest: Manifest): { seq: number; ref: SnapshotRef } {
  if (base !== null) return { seq: base.seq, ref: base.snapshot };
  return { seq: 0, ref: { file: GENESIS_FILE, sha256: manifest.genesisSha256, size: manifest.genesisSize } };
}

/** The file history starts from in the journal `dir` (`genesis.db`, or the base checkpoint's snapshot). */
export function startingFile(dir: string): string {
  return retainedBaseOf(dir)?.snapshot.file ?? GENESIS_FILE;
}

/** The `base` of the journal in `dir` (its manifest names the journal), or null: history starts at genesis. */
export function retainedBaseOf(dir: string): RetainedBase | null {
  const bytes = readSmallFile(join(dir, MANIFEST_FILE), MANIFEST_SIZE);
  return bytes === null ? null : readBase(dir, decodeManifest(bytes, MANIFEST_FILE).journalId);
}

function malformed(reason: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_MALFORMED', `decode ${BASE_FILE}: ${reason}`, { file: BASE_FILE, offset: 0, reason });
}
