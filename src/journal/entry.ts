/**
 * The entry body: a msgpack map (string keys, fixed key order) describing one admitted write. Its
 * SHA-256 is the entry's hash; the body names the previous entry's hash, which chains the journal.
 * Decoding validates the shape with zod, so nothing read from disk is trusted unchecked.
 */
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { sha256 } from './bytes.js';
import { decodeRowids } from './rowids.js';
import { BODY_SIZE_MAX, HASH_SIZE, SEQ_MAX } from './format.js';

export const ENTRY_BODY_VERSION = 1;
/**
 * Bodies that carry `rowids` are version 2; every other body is still written as version 1, so journals
 * that never touch a rowid table keyed by something else stay readable by version-1 readers.
 */
export const ENTRY_BODY_VERSION_ROWIDS = 2;

/** What an entry records: a data write, a schema migration, or a resynchronisation after a foreign write. */
export type EntryKind = 'write' | 'schema' | 'resync';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface TableCounts {
  table: string;
  inserts: number;
  updates: number;
  deletes: number;
}

/** A snapshot file in the journal directory that an entry refers to (resync entries). */
export interface SnapshotRef {
  file: string;
  sha256: Uint8Array;
  size: number;
}

export interface EntryBody {
  seq: number;
  kind: EntryKind;
  /** Commit time of the writer, ms since the Unix epoch (the writer's clock: informational). */
  time: number;
  /** The admission epoch of the writer (fencing token). */
  epoch: number;
  actor: string | null;
  message: string | null;
  meta: Record<string, JsonValue> | null;
  prevHash: Uint8Array;
  tables: TableCounts[];
  /** The SQLite changeset of the write (may be empty for schema and resync entries). */
  changeset: Uint8Array;
  /** schema entries: the migration SQL as executed. */
  sql?: string;
  /** resync entries: the snapshot that became the new base state. */
  snapshot?: SnapshotRef;
  /** undo entries: the sequence number of the entry this write reverses. */
  undoes?: number;
  /**
   * Rowids of rows of rowid tables whose PRIMARY KEY is not the rowid that the entry inserted, deleted or
   * moved (encoded by `encodeRowids`, journal/FORMAT.md §6.1). Absent when there are none.
   */
  rowids?: Uint8Array;
}

const packr = new Packr({ useRecords: false, variableMapSize: true, moreTypes: false, int64AsType: 'number' });
// Decoding into Maps, then into objects by defineProperty: msgpackr's object mode renames a "__proto__"
// key (to block prototype pollution), which would silently change user meta.
const unpackr = new Packr({ useRecords: false, mapsAsObjects: false, moreTypes: false, int64AsType: 'number' });

const count = z.number().int().min(0).max(SEQ_MAX);
const bytes = z.instanceof(Uint8Array);
const json: z.ZodType<JsonValue> = z.lazy(() => z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(json), z.record(z.string(), json)]));

const bodySchema = z.object({
  v: z.union([z.literal(ENTRY_BODY_VERSION), z.literal(ENTRY_BODY_VERSION_ROWIDS)]),
  seq: z.number().int().min(1).max(SEQ_MAX),
  kind: z.enum(['write', 'schema', 'resync']),
  time: z.number().int().min(0),
  epoch: count,
  actor: z.string().nullable(),
  message: z.string().nullable(),
  meta: z.record(z.string(), json).nullable(),
  prevHash: bytes.refine((b) => b.byteLength === HASH_SIZE, 'prevHash is 32 bytes'),
  tables: z.array(z.object({ table: z.string(), inserts: count, updates: count, deletes: count })),
  changeset: bytes,
  sql: z.string().optional(),
  snapshot: z.object({ file: z.string().regex(/^[A-Za-z0-9._-]+$/), sha256: bytes.refine((b) => b.byteLength === HASH_SIZE), size: count }).optional(),
  undoes: z.number().int().min(1).max(SEQ_MAX).optional(),
  rowids: bytes.optional(),
}).strict().refine((body) => (body.rowids !== undefined) === (body.v === ENTRY_BODY_VERSION_ROWIDS), {
  message: 'rowids are present exactly in version-2 bodies', path: ['rowids'],
});

/** Encodes a body. Keys are written in a fixed order so equal bodies encode to equal bytes. */
export function encodeEntryBody(body: EntryBody): Uint8Array {
  assert(body.prevHash.byteLength === HASH_SIZE, 'prevHash size');
  const ordered: Record<string, unknown> = {
    v: body.rowids === undefined ? ENTRY_BODY_VERSION : ENTRY_BODY_VERSION_ROWIDS, seq: body.seq, kind: body.kind, time: body.time, epoch: body.epoch,
    actor: body.actor, message: body.message, meta: body.meta, prevHash: body.prevHash,
    tables: body.tables.map((t) => ({ table: t.table, inserts: t.inserts, updates: t.updates, deletes: t.deletes })),
    changeset: body.changeset,
  };
  if (body.sql !== undefined) ordered.sql = body.sql;
  if (body.snapshot !== undefined) ordered.snapshot = { file: body.snapshot.file, sha256: body.snapshot.sha256, size: body.snapshot.size };
  if (body.undoes !== undefined) ordered.undoes = body.undoes;
  if (body.rowids !== undefined) ordered.rowids = body.rowids;
  const encoded = packr.pack(ordered);
  if (encoded.byteLength > BODY_SIZE_MAX) {
    throw new RangeError(`entry body of ${encoded.byteLength} bytes exceeds the ${BODY_SIZE_MAX}-byte limit`);
  }
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

export function decodeEntryBody(encoded: Uint8Array, file: string, offset: number, seq?: number): EntryBody {
  let raw: unknown;
  try {
    raw = unpackr.unpack(encoded);
  } catch (cause) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `decode entry ${seq ?? '?'} in ${file}: not msgpack`, {
      file, offset, reason: 'body is not msgpack', ...(seq === undefined ? {} : { seq }),
    }, { cause });
  }
  const normalized = normalizeBinary(raw) as Record<string, unknown>;
  const parsed = bodySchema.safeParse(normalized);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ChangetrailError('JOURNAL_MALFORMED', `decode entry ${seq ?? '?'} in ${file}: ${reason}`, {
      file, offset, reason, ...(seq === undefined ? {} : { seq }),
    });
  }
  const { v: _version, ...body } = parsed.data;
  if (body.rowids !== undefined) decodeRowids(body.rowids, { file, offset, ...(seq === undefined ? {} : { seq }) });
  // zod rebuilds records by assignment, which drops a "__proto__" key; keep the validated original.
  return { ...body, meta: normalized.meta } as EntryBody;
}

/** The entry hash: SHA-256 of the encoded body. */
export function hashEntryBody(encoded: Uint8Array): Uint8Array {
  return sha256(encoded);
}

/** Maps become plain objects (string keys only), and msgpackr's Buffers plain Uint8Array views. */
function normalizeBinary(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(normalizeBinary);
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    // defineProperty, not assignment: a stored key "__proto__" must stay a plain key.
    for (const [key, inner] of value) {
      if (typeof key !== 'string') return value;
      Object.defineProperty(out, key, { value: normalizeBinary(inner), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
