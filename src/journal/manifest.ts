/**
 * The manifest binds a journal directory to one database: the database's `_changetrail_head` row stores
 * the same journal id, and the genesis snapshot's digest is fixed here so replicas can trust it.
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `CTJM` |
 * | 4 | 2 | version (1) |
 * | 6 | 2 | flags (0) |
 * | 8 | 16 | journal id |
 * | 24 | 8 | created at, ms since the Unix epoch |
 * | 32 | 32 | SHA-256 of the genesis snapshot file |
 * | 64 | 8 | size of the genesis snapshot file in bytes |
 * | 72 | 4 | reserved (0) |
 * | 76 | 4 | CRC-32 of bytes 0..75 |
 */
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { checkHeaderChecksum, checkPreamble, checksum, readSafeU64, sha256, view } from './bytes.js';
import { FORMAT_VERSION, HASH_SIZE, JOURNAL_ID_SIZE, MANIFEST_MAGIC, MANIFEST_SIZE } from './format.js';

export interface Manifest {
  journalId: Uint8Array;
  createdAtMs: number;
  genesisSha256: Uint8Array;
  genesisSize: number;
}

export function encodeManifest(manifest: Manifest): Uint8Array {
  assert(manifest.journalId.byteLength === JOURNAL_ID_SIZE, 'journal id size');
  assert(manifest.genesisSha256.byteLength === HASH_SIZE, 'genesis hash size');
  assert(Number.isSafeInteger(manifest.createdAtMs) && manifest.createdAtMs >= 0, 'createdAtMs is a safe integer');
  assert(Number.isSafeInteger(manifest.genesisSize) && manifest.genesisSize >= 0, 'genesisSize is a safe integer');
  const bytes = new Uint8Array(MANIFEST_SIZE);
  const data = view(bytes);
  data.setUint32(0, MANIFEST_MAGIC);
  data.setUint16(4, FORMAT_VERSION);
  bytes.set(manifest.journalId, 8);
  data.setBigUint64(24, BigInt(manifest.createdAtMs));
  bytes.set(manifest.genesisSha256, 32);
  data.setBigUint64(64, BigInt(manifest.genesisSize));
  data.setUint32(76, checksum(bytes.subarray(0, 76)));
  return bytes;
}

export function decodeManifest(bytes: Uint8Array, file: string): Manifest {
  if (bytes.byteLength !== MANIFEST_SIZE) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `decode manifest ${file}: size ${bytes.byteLength}, expected ${MANIFEST_SIZE}`, {
      file, offset: 0, reason: 'wrong size',
    });
  }
  const data = view(bytes);
  checkPreamble(data, MANIFEST_MAGIC, file, 'manifest');
  checkHeaderChecksum(bytes, 76, file, 'manifest');
  return {
    journalId: bytes.slice(8, 24),
    createdAtMs: readSafeU64(data, 24, file, 'createdAtMs'),
    genesisSha256: bytes.slice(32, 64),
    genesisSize: readSafeU64(data, 64, file, 'genesisSize'),
  };
}

/**
 * The hash that entry 1 names as its `prevHash`: SHA-256 of the encoded manifest, so the chain is
 * rooted in the journal id and the genesis snapshot.
 */
export function chainRootHash(manifestBytes: Uint8Array): Uint8Array {
  assert(manifestBytes.byteLength === MANIFEST_SIZE, 'manifest bytes');
  return sha256(manifestBytes);
}
