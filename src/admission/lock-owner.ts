/**
 * `owner.json` and queue tickets: their schema, parsing and formatting (journal/LOCK.md §3, §6).
 *
 * Parsing never throws: a reader must classify whatever it finds, and each class has a fixed treatment.
 * `valid` owners can be proven dead; `malformed` (or missing) ones are held while young and may be retired
 * once old; an `unknown-protocol` lock was written by a newer changetrail and is never broken.
 */
import { z } from 'zod';
import { assert } from '../assert.js';
import type { ProcessIdentity } from './process-identity.js';

/** The lock protocol this module speaks. */
export const LOCK_PROTOCOL = 1;

/** Bound on `owner.json` and ticket sizes; anything longer is malformed. */
export const OWNER_BYTES_MAX = 4096;

const decimal = z.string().regex(/^\d{1,20}$/);

const identityShape = {
  host: z.string().min(1).max(255),
  pid: z.number().int().min(1).max(2 ** 31 - 1),
  pidNamespace: decimal.nullable(),
  bootId: z.string().min(1).max(64).nullable(),
  processStartTime: decimal.nullable(),
};

const lockOwnerSchema = z.object({
  protocol: z.literal(LOCK_PROTOCOL),
  ownerId: z.string().min(1).max(512),
  ...identityShape,
  mode: z.literal('write'),
  staleMs: z.number().int().min(1),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});

const ticketSchema = z.object({
  protocol: z.literal(LOCK_PROTOCOL),
  ...identityShape,
  staleMs: z.number().int().min(1),
});

/** The content of `<journalDir>/lock/owner.json`. */
export type LockOwner = z.infer<typeof lockOwnerSchema>;

/** The content of a queue ticket `<journalDir>/lock.queue/<seq>`. */
export type LockTicket = z.infer<typeof ticketSchema>;

/** How a reader classifies an `owner.json` or ticket. */
export type OwnerParse<T> =
  | { kind: 'valid'; value: T }
  | { kind: 'malformed'; reason: string }
  | { kind: 'unknown-protocol'; protocol: number };

/** Waiters read the same record on every wake-up; parsing it once saves ~10 µs of zod per look. */
const PARSE_CACHE_SIZE_MAX = 16;
const ownerParseCache = new Map<string, OwnerParse<LockOwner>>();

/** Classifies the text of an `owner.json`. */
export function parseLockOwner(text: string): OwnerParse<LockOwner> {
  const cached = ownerParseCache.get(text);
  if (cached !== undefined) return cached;
  const parsed = parseWith(lockOwnerSchema, text);
  if (ownerParseCache.size >= PARSE_CACHE_SIZE_MAX) ownerParseCache.clear();
  ownerParseCache.set(text, parsed);
  return parsed;
}

/** Classifies the text of a queue ticket. */
export function parseLockTicket(text: string): OwnerParse<LockTicket> {
  return parseWith(ticketSchema, text);
}

function parseWith<T>(schema: z.ZodType<T>, text: string): OwnerParse<T> {
  if (Buffer.byteLength(text) > OWNER_BYTES_MAX) return { kind: 'malformed', reason: 'too long' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'malformed', reason: 'not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { kind: 'malformed', reason: 'not an object' };
  const protocol = (json as { protocol?: unknown }).protocol;
  if (typeof protocol === 'number' && Number.isInteger(protocol) && protocol !== LOCK_PROTOCOL) {
    return { kind: 'unknown-protocol', protocol };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { kind: 'malformed', reason: parsed.error.issues[0]?.path.join('.') || 'invalid' };
  return { kind: 'valid', value: parsed.data };
}

/** Formats an `owner.json`, validating it first (a record we cannot read back is a bug). */
export function formatLockOwner(owner: LockOwner): string {
  const text = `${JSON.stringify(owner)}\n`;
  assert(parseLockOwner(text).kind === 'valid', 'formatLockOwner: owner record must validate');
  return text;
}

/** Formats a queue ticket, validating it first. */
export function formatLockTicket(ticket: LockTicket): string {
  const text = `${JSON.stringify(ticket)}\n`;
  assert(parseLockTicket(text).kind === 'valid', 'formatLockTicket: ticket must validate');
  return text;
}

/** A fresh owner id: `<host>:<pid>:<32 hex digits>`. */
export function formatOwnerId(identity: ProcessIdentity, randomHex: string): string {
  return `${identity.host}:${identity.pid}:${randomHex}`;
}

/** The identity part of an owner or ticket. */
export function identityOf(record: LockOwner | LockTicket): ProcessIdentity {
  const { host, pid, pidNamespace, bootId, processStartTime } = record;
  return { host, pid, pidNamespace, bootId, processStartTime };
}
