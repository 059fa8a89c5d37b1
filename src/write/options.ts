/** Validation of user-given options (zod): wrong types are API misuse, reported as TypeError/RangeError. */
import { z } from 'zod';
import { validateMetaDepth, type JsonValue } from '../journal/entry.js';

const json: z.ZodType<JsonValue> = z.lazy(() => z.union([z.null(), z.boolean(), z.number().finite(), z.string(), z.array(json), z.record(z.string(), json)]));

/** Messages, actors and meta are audit data, not payload: 64 KiB each keeps entries lean. */
export const AUDIT_TEXT_MAX = 64 * 1024;

export const openTrailOptionsSchema = z.object({
  journalDir: z.string().min(1).optional(),
  journalMode: z.enum(['delete', 'wal']).optional(),
  busyTimeoutMs: z.number().int().min(0).max(3_600_000).optional(),
  actor: z.string().max(AUDIT_TEXT_MAX).optional(),
  lock: z.object({
    staleMs: z.number().int().min(100).optional(),
    heartbeatMs: z.number().int().min(10).optional(),
    timeoutMs: z.number().int().min(0).optional(),
    idleReleaseMs: z.number().int().min(0).optional(),
    fairShareMs: z.number().int().min(0).optional(),
  }).strict().optional(),
  allowUnsafeFilesystem: z.boolean().optional(),
  segmentBytesTarget: z.number().int().min(512).optional(),
}).strict();

export type OpenTrailOptions = z.infer<typeof openTrailOptionsSchema>;

export const writeOptionsSchema = z.object({
  message: z.string().max(AUDIT_TEXT_MAX).optional(),
  actor: z.string().max(AUDIT_TEXT_MAX).optional(),
  meta: z.record(z.string(), json).optional(),
}).strict();

export type WriteOptions = z.infer<typeof writeOptionsSchema>;

export const resyncOptionsSchema = writeOptionsSchema.extend({
  /**
   * First compare the database with a replay of its journal; when they are equal (what changed outside
   * changetrail was only a file rewrite: VACUUM, ANALYZE, PRAGMA optimize), record the file's new change
   * counter and return null instead of taking a snapshot.
   */
  ifChanged: z.boolean().optional(),
}).strict();

export type ResyncOptions = z.infer<typeof resyncOptionsSchema>;

export const entriesOptionsSchema = z.object({
  from: z.number().int().min(1).optional(),
  to: z.number().int().min(0).optional(),
}).strict();

export type EntriesOptions = z.infer<typeof entriesOptionsSchema>;

/**
 * Parses `value` or throws a TypeError naming the offending option. A `meta` nested deeper than the
 * journal allows is ENTRY_INVALID, checked before zod recurses into it (3,000 levels overflow its stack).
 */
export function parseOptions<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  if (value !== null && typeof value === 'object' && 'meta' in value) validateMetaDepth(value.meta);
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue?.path.join('.') || what;
  const error = issue?.code === 'too_big' || issue?.code === 'too_small' ? RangeError : TypeError;
  throw new error(`${what}: invalid option ${where}: ${issue?.message ?? 'invalid'}`);
}

/**
 * `parseOptions(writeOptionsSchema, ...)` without zod on the hot path (issue 10 item 3: zod cost 10-18 µs
 * per write): no options, or only `message`/`actor` strings within bounds, are checked here and give
 * exactly what zod gives; anything else (meta, wrong types, unknown keys) goes through the schema.
 */
export function parseWriteOptions(value: unknown, what: string): WriteOptions {
  if (value === undefined || value === null) return {};
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let simple = true;
    for (const key in value) {
      const field = (value as Record<string, unknown>)[key];
      if ((key !== 'message' && key !== 'actor') || (field !== undefined && (typeof field !== 'string' || field.length > AUDIT_TEXT_MAX))) {
        simple = false;
        break;
      }
    }
    if (simple) {
      const { message, actor } = value as { message?: string; actor?: string };
      return { ...(message === undefined ? {} : { message }), ...(actor === undefined ? {} : { actor }) };
    }
  }
  return parseOptions(writeOptionsSchema, value, what);
}
