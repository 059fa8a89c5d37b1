/**
 * Small readers of a journal directory's fixed files: the manifest, the advisory head marker, and the
 * listing of segment files. Entries are read only through the head-anchored reader in journal.ts.
 */
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { listDirectory, readSmallFile } from './files.js';
import { MANIFEST_FILE, MANIFEST_SIZE, HEAD_FILE, HEAD_SIZE } from './format.js';
import { decodeHead, type HeadMarker } from './head.js';
import { chainRootHash, decodeManifest, type Manifest } from './manifest.js';
import { parseSegmentName } from './segment.js';

export interface JournalIdentity {
  manifest: Manifest;
  /** `prevHash` of entry 1. */
  rootHash: Uint8Array;
}

/** Reads and verifies the manifest; null when the directory has none. */
export function readManifest(dir: string): JournalIdentity | null {
  const bytes = readSmallFile(join(dir, MANIFEST_FILE), MANIFEST_SIZE);
  if (bytes === null) return null;
  return { manifest: decodeManifest(bytes, MANIFEST_FILE), rootHash: chainRootHash(bytes) };
}

/** Reads the published head marker; null when missing or unreadable (it is advisory). */
export function readHeadMarker(dir: string): HeadMarker | null {
  const bytes = readSmallFile(join(dir, HEAD_FILE), HEAD_SIZE);
  if (bytes === null) return null;
  try {
    return decodeHead(bytes, HEAD_FILE);
  } catch {
    return null;
  }
}

/** First sequence numbers of the segment files present, ascending. */
export function listSegments(dir: string): number[] {
  return listDirectory(dir).map(parseSegmentName).filter((seq): seq is number => seq !== null).sort((a, b) => a - b);
}

/** Adds `seq` to a frame error that lacks it (its header was unreadable); other errors pass unchanged. */
export function withSeq(error: unknown, seq: number): unknown {
  if (!(error instanceof ChangetrailError) || !('offset' in error.details) || 'seq' in error.details) return error;
  return new ChangetrailError(error.code, `${error.message} (entry ${seq})`, { ...error.details, seq } as never, { cause: error.cause });
}
