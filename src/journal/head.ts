/**
 * The head marker: the committed head, published after each COMMIT for readers that cannot open the
 * database (followers of a copied or synced journal directory). It is advisory — the database row is
 * authoritative — and may lag: a crash between COMMIT and publication leaves an older value, which the
 * next writer republishes. Readers never go backwards.
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `CTJH` |
 * | 4 | 2 | version (1) |
 * | 6 | 2 | flags (0) |
 * | 8 | 16 | journal id |
 * | 24 | 8 | committed sequence number |
 * | 32 | 32 | hash of the committed entry (the chain root when seq is 0) |
 * | 64 | 4 | reserved (0) |
 * | 68 | 4 | CRC-32 of bytes 0..67 |
 */
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { checkHeaderChecksum, checkPreamble, checksum, readSafeU64, view } from './bytes.js';
import { FORMAT_VERSION, HASH_SIZE, HEAD_MAGIC, HEAD_SIZE, JOURNAL_ID_SIZE } from './format.js';

export interface HeadMarker {
  journalId: Uint8Array;
  seq: number;
  hash: Uint8Array;
}

export function encodeHead(head: HeadMarker): Uint8Array {
  assert(head.journalId.byteLength === JOURNAL_ID_SIZE, 'journal id size');
  assert(head.hash.byteLength === HASH_SIZE, 'hash size');
  assert(Number.isSafeInteger(head.seq) && head.seq >= 0, 'seq >= 0');
  const bytes = new Uint8Array(HEAD_SIZE);
  const data = view(bytes);
  data.setUint32(0, HEAD_MAGIC);
  data.setUint16(4, FORMAT_VERSION);
  bytes.set(head.journalId, 8);
  data.setBigUint64(24, BigInt(head.seq));
  bytes.set(head.hash, 32);
  data.setUint32(68, checksum(bytes.subarray(0, 68)));
  return bytes;
}

export function decodeHead(bytes: Uint8Array, file: string): HeadMarker {
  if (bytes.byteLength < HEAD_SIZE) {
    throw new ChangetrailError('JOURNAL_TORN_TAIL', `decode head ${file}: torn (${bytes.byteLength} bytes)`, { file, offset: 0 });
  }
  const head = bytes.subarray(0, HEAD_SIZE);
  const data = view(head);
  checkPreamble(data, HEAD_MAGIC, file, 'head');
  checkHeaderChecksum(head, 68, file, 'head');
  return { journalId: head.slice(8, 24), seq: readSafeU64(data, 24, file, 'seq'), hash: head.slice(32, 64) };
}
