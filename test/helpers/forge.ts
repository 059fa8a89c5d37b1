/**
 * Forging journals the way an attacker with write access would: rewrite committed entry bodies, recompute
 * frame CRCs, and optionally re-chain every later entry and move the database's head row to match (an
 * attacker who also controls the database). Real files only; used by the anchoring, validation and
 * replay-guard tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Packr } from 'msgpackr';
import { sha256 } from '../../src/journal/bytes.js';
import { encodeFrame } from '../../src/journal/frame.js';
import { encodeHead } from '../../src/journal/head.js';
import { SEGMENT_HEADER_SIZE } from '../../src/journal/format.js';

const packr = new Packr({ useRecords: false, variableMapSize: true, moreTypes: false, int64AsType: 'number' });
const unpackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

/** A raw entry body as msgpack decodes it (keys in stored order). */
export type RawBody = Record<string, unknown>;

export interface ForgeOptions {
  /** Re-chain the entries after the forged one and move the head row and marker (default true). */
  rechain?: boolean;
  /** Segment file name (default the first segment). */
  segment?: string;
  /** Rewrites the encoded body bytes after `mutate` (for bodies msgpackr cannot produce). */
  patch?: (body: Uint8Array) => Uint8Array;
}

/** Splits a segment into its raw frame bodies. */
export function readRawBodies(segmentPath: string): { header: Uint8Array; bodies: Uint8Array[] } {
  const bytes = new Uint8Array(readFileSync(segmentPath));
  const bodies: Uint8Array[] = [];
  let offset = SEGMENT_HEADER_SIZE;
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (offset + 16 <= bytes.byteLength) {
    const size = data.getUint32(offset);
    bodies.push(bytes.slice(offset + 16, offset + 16 + size));
    offset += 16 + size;
  }
  return { header: bytes.slice(0, SEGMENT_HEADER_SIZE), bodies };
}

export function decodeRaw(body: Uint8Array): RawBody {
  return unpackr.unpack(body) as RawBody;
}

export function encodeRaw(raw: RawBody): Uint8Array {
  const packed = packr.pack(raw);
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
}

/**
 * Replaces entry `seq` of the database at `dbPath` by `mutate(raw)` with a valid CRC. With `rechain`,
 * every later entry's prevHash is rewritten and the head row (hash, tail offset, segment size, change
 * counter) and the head marker are moved to the forged chain's end.
 */
export function forgeEntry(dbPath: string, seq: number, mutate: (raw: RawBody) => RawBody | void, options: ForgeOptions = {}): void {
  const dir = `${dbPath}.changes`;
  const name = options.segment ?? '00000000000000000001.seg';
  const path = join(dir, name);
  const { header, bodies } = readRawBodies(path);
  const first = Number(decodeRaw(bodies[0]!).seq);
  const index = seq - first;
  const raw = decodeRaw(bodies[index]!);
  bodies[index] = encodeRaw(mutate(raw) ?? raw);
  if (options.patch !== undefined) bodies[index] = options.patch(bodies[index]!);
  if (options.rechain !== false) {
    for (let i = index + 1; i < bodies.length; i++) {
      const next = decodeRaw(bodies[i]!);
      next.prevHash = sha256(bodies[i - 1]!);
      bodies[i] = encodeRaw(next);
    }
  }
  const frames = bodies.map((body, i) => encodeFrame(first + i, body));
  const segment = concat([header, ...frames]);
  writeFileSync(path, segment);
  if (options.rechain === false) return;
  const last = bodies[bodies.length - 1]!;
  const hash = sha256(last);
  moveHead(dbPath, hash, segment.byteLength - frames[frames.length - 1]!.byteLength, segment.byteLength);
  const journalId = new Uint8Array(header.subarray(8, 24));
  writeFileSync(join(dir, 'head'), encodeHead({ journalId, seq: first + bodies.length - 1, hash }));
}

/**
 * Sets the head row as an attacker controlling the database would, keeping the change counter consistent
 * (one commit: the UPDATE and the DELETE in one transaction).
 */
function moveHead(dbPath: string, hash: Uint8Array, tailOffset: number, segmentSize: number): void {
  const counter = readFileSync(dbPath).readUInt32BE(24);
  const db = new DatabaseSync(dbPath);
  try {
    db.exec('BEGIN');
    db.prepare('UPDATE _changetrail_head SET hash = ?, tail_offset = ?, segment_size = ?, change_counter = CASE WHEN change_counter IS NULL THEN NULL ELSE ? END WHERE id = 1')
      .run(hash, tailOffset, segmentSize, (counter + 1) % 2 ** 32);
    // The outbox holds frames of the history being replaced (FORMAT.md §7.1): an attacker rewrites them too.
    db.exec('DELETE FROM _changetrail_outbox; COMMIT');
  } finally {
    db.close();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** Replaces the first occurrence of `target` in `bytes` by `replacement`. */
export function replaceBytes(bytes: Uint8Array, target: Uint8Array, replacement: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes).indexOf(Buffer.from(target));
  if (at < 0) throw new Error('replaceBytes: target not found');
  return concat([bytes.subarray(0, at), replacement, bytes.subarray(at + target.byteLength)]);
}
