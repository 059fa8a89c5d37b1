/**
 * Optimistic writes: plan without the admission lock, think (await) outside any transaction, then
 * revalidate and commit inside one short admitted write. The journal is the read-set validator: the
 * entries committed after the plan's seq name exactly which rows changed, so revalidation decodes only
 * those entries (journal/FORMAT.md; issue 17). Foreign writes are already refused by admission.
 */
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { z } from 'zod';
import { iterateChangeset, SqlText, type Value } from '../changeset/index.js';
import { ChangetrailError, type ErrorDetails } from '../errors.js';
import { readOutbox } from '../journal/outbox.js';
import { openJournal } from '../journal/journal.js';
import { positionOf } from '../journal/position.js';
import { foldName } from '../apply/schema.js';
import type { Entry } from './entry-view.js';
import { readHead } from './head-row.js';
import { parseOptions, writeOptionsSchema, type WriteOptions } from './options.js';

/** A key value as a plan declares it (JavaScript numbers that are integers compare equal to INTEGER keys). */
export type KeyValue = null | number | bigint | string | Uint8Array;

/**
 * What a plan's decision depended on: one row by PRIMARY KEY (a value, the values in PRIMARY KEY order,
 * or `{ column: value }`), a whole table, or the result of a read-only query (re-run under the lock).
 */
export type ReadDeclaration =
  | { table: string; key: KeyValue | readonly KeyValue[] | Readonly<Record<string, KeyValue>> }
  | { table: string }
  | { sql: string; params?: readonly KeyValue[] };

/** What `plan(db)` returns: the declared reads and a value (a promise is awaited outside the lock). */
export interface OptimisticPlan<V> {
  reads: readonly ReadDeclaration[];
  value: V;
}

export interface OptimisticWriteOptions extends WriteOptions {
  /** Re-plans after a conflict, at most this many times (default 5). */
  retries?: number;
  /** First backoff after a conflict; doubles per retry with jitter, capped at 1 s (default 5). */
  backoffMs?: number;
  signal?: AbortSignal;
}

/** What `optimisticWrite` resolves to. */
export interface OptimisticResult<R> {
  /** The entry committed (null when `commit` changed nothing). Its meta holds `plannedAt`. */
  entry: Entry | null;
  /** What `commit(db, value)` returned. */
  result: R;
  /** The seq of the head the successful plan read at. */
  plannedAt: number;
  /** Plans run (1 = no conflict). */
  attempts: number;
}

/** The part of Trail this module needs (kept structural so trail.ts only forwards). */
export interface OptimisticHost {
  readonly journalDir: string;
  read<T>(fn: (db: DatabaseSync) => T): T;
  write(fn: (db: DatabaseSync) => unknown, options?: WriteOptions): Promise<Entry | null>;
}

const RETRIES_DEFAULT = 5;
const BACKOFF_MS_DEFAULT = 5;
const BACKOFF_MS_MAX = 1_000;
/** Declarations per plan: each costs a map entry; 100,000 keeps a plan's read set well under 100 MB. */
export const READ_DECLARATION_COUNT_MAX = 100_000;

const keyValueSchema = z.union([z.null(), z.number().finite(), z.bigint(), z.string(), z.instanceof(Uint8Array)]);
const readSchema = z.union([
  z.object({ table: z.string().min(1), key: z.union([keyValueSchema, z.array(keyValueSchema).min(1), z.record(z.string(), keyValueSchema)]) }).strict(),
  z.object({ table: z.string().min(1) }).strict(),
  z.object({ sql: z.string().min(1), params: z.array(keyValueSchema).optional() }).strict(),
]);
const planSchema = z.object({ reads: z.array(readSchema).max(READ_DECLARATION_COUNT_MAX), value: z.unknown() }).strict();
const optionsSchema = writeOptionsSchema.extend({
  retries: z.number().int().min(0).max(1_000).optional(),
  backoffMs: z.number().int().min(0).max(60_000).optional(),
  signal: z.instanceof(AbortSignal).optional(),
}).strict();

type KeyJson = NonNullable<ErrorDetails['OPTIMISTIC_CONFLICT']['key']>;
type Conflict = Omit<ErrorDetails['OPTIMISTIC_CONFLICT'], 'attempts' | 'plannedAt'>;

/** The read set of one plan, keyed for lookups by folded table name and canonical key. */
export interface ReadSet {
  rows: Map<string, Map<string, KeyJson>>;
  tables: Set<string>;
  queries: { sql: string; params: SQLInputValue[]; digest: string }[];
  /** Folded name → the table's name as declared (for conflict details). */
  names: Map<string, string>;
}

/** One planned attempt: what was read, at which seq, and the value it produced. */
interface Planned<V> {
  reads: ReadSet;
  plannedAt: number;
  value: V;
}

/**
 * Runs an optimistic write for `host` (see `Trail.optimisticWrite`).
 *
 * @throws ChangetrailError OPTIMISTIC_CONFLICT after `retries` re-plans; the signal's reason (an AbortError)
 *   when aborted; errors of `write`. TypeError/RangeError for malformed plans and options.
 */
export async function runOptimisticWrite<V, R>(
  host: OptimisticHost, plan: (db: DatabaseSync) => OptimisticPlan<V>,
  commit: (db: DatabaseSync, value: Awaited<V>) => R, options?: OptimisticWriteOptions,
): Promise<OptimisticResult<R>> {
  if (typeof plan !== 'function' || typeof commit !== 'function') throw new TypeError('optimisticWrite: plan and commit must be functions');
  const parsed = parseOptions(optionsSchema, options, 'optimisticWrite');
  const { retries = RETRIES_DEFAULT, backoffMs = BACKOFF_MS_DEFAULT, signal, ...writeOptions } = parsed;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    const planned = planOnce(host, plan);
    const value = await abortable(Promise.resolve(planned.value as Awaited<V>), signal);
    signal?.throwIfAborted();
    const conflict = await commitOnce(host, planned, value, commit, writeOptions);
    if (conflict.kind === 'committed') return { entry: conflict.entry, result: conflict.result, plannedAt: planned.plannedAt, attempts: attempt };
    if (attempt > retries) {
      throw new ChangetrailError('OPTIMISTIC_CONFLICT',
        `optimisticWrite: ${describe(conflict.conflict)} after the plan at seq ${planned.plannedAt}; gave up after ${attempt} attempts`,
        { ...conflict.conflict, plannedAt: planned.plannedAt, attempts: attempt });
    }
    await sleep(backoffFor(backoffMs, attempt), signal);
  }
}

type CommitOutcome<R> = { kind: 'committed'; entry: Entry | null; result: R } | { kind: 'conflict'; conflict: Conflict };

/**
 * Checks outside the lock first (a conflict found there retries without queueing for the lock), then
 * again inside the write, where only the entries committed since the first check are left to decode.
 */
async function commitOnce<V, R>(
  host: OptimisticHost, planned: Planned<V>, value: Awaited<V>, commit: (db: DatabaseSync, value: Awaited<V>) => R, writeOptions: WriteOptions,
): Promise<CommitOutcome<R>> {
  const early = host.read((db) => checkSince(host.journalDir, db, planned.reads, planned.plannedAt));
  if (early.conflict !== null) return { kind: 'conflict', conflict: early.conflict };
  let outcome: CommitOutcome<R> | null = null;
  const meta = { ...(writeOptions.meta ?? {}), plannedAt: planned.plannedAt };
  const entry = await host.write((db) => {
    const checked = checkSince(host.journalDir, db, planned.reads, early.checkedAt, planned.plannedAt);
    if (checked.conflict !== null) {
      outcome = { kind: 'conflict', conflict: checked.conflict };
      return;
    }
    const result = commit(db, value);
    if (result instanceof Promise) throw new TypeError('optimisticWrite: commit is async; a transaction cannot span an await');
    outcome = { kind: 'committed', entry: null, result };
  }, { ...writeOptions, meta });
  const settled = outcome as CommitOutcome<R> | null;
  if (settled === null) throw new TypeError('optimisticWrite: the write body did not run');
  return settled.kind === 'committed' ? { ...settled, entry } : settled;
}

/** Runs `plan` in one read transaction, with the head it read at, and validates its declarations. */
function planOnce<V>(host: OptimisticHost, plan: (db: DatabaseSync) => OptimisticPlan<V>): Planned<V> {
  return host.read((db) => {
    const plannedAt = readHead(db).seq;
    const returned = plan(db);
    if (returned instanceof Promise) throw new TypeError('optimisticWrite: plan is async; return { reads, value } and put the awaitable work in value');
    const checked = planSchema.safeParse(returned);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new TypeError(`optimisticWrite: plan returned an invalid ${issue?.path.join('.') || 'result'}: ${issue?.message ?? 'invalid'}`);
    }
    return { reads: buildReadSet(db, returned.reads), plannedAt, value: returned.value };
  });
}

/**
 * Conflicts between the read set and entries `after+1..head` (the head row of `db`'s transaction);
 * queries are re-run when any entry was committed after `plannedAt`.
 */
/** @internal Exported for the benchmark. */
export function checkSince(dir: string, db: DatabaseSync, reads: ReadSet, after: number, plannedAt = after): { conflict: Conflict | null; checkedAt: number } {
  const head = readHead(db);
  if (head.seq !== after) {
    const journal = openJournal(dir, positionOf(head.journalId, head.seq, head.hash), { outbox: () => readOutbox(db) });
    for (const entry of journal.entries({ from: after + 1 })) {
      const conflict = entryConflict(reads, entry.seq, entry.kind, entry.changeset);
      if (conflict !== null) return { conflict, checkedAt: head.seq };
    }
  }
  if (head.seq !== plannedAt) {
    for (const query of reads.queries) {
      if (digestQuery(db, query.sql, query.params) !== query.digest) return { conflict: { table: null, key: null, seq: head.seq, reason: 'query-changed', sql: query.sql }, checkedAt: head.seq };
    }
  }
  return { conflict: null, checkedAt: head.seq };
}

function entryConflict(reads: ReadSet, seq: number, kind: string, changeset: Uint8Array): Conflict | null {
  if (kind === 'schema' || kind === 'resync') {
    if (reads.rows.size === 0 && reads.tables.size === 0 && reads.queries.length === 0) return null;
    return { table: null, key: null, seq, reason: kind === 'schema' ? 'schema-changed' : 'resync' };
  }
  if (reads.rows.size === 0 && reads.tables.size === 0) return null;
  for (const { group, change } of iterateChangeset(changeset)) {
    const folded = foldName(group.name);
    if (reads.tables.has(folded)) return { table: reads.names.get(folded) ?? group.name, key: null, seq, reason: 'table-changed' };
    const keys = reads.rows.get(folded);
    if (keys === undefined) continue;
    const fields = change.op === 'insert' ? change.new : change.old;
    const canonical = canonicalKey(pkValues(fields ?? [], group.pk));
    const key = keys.get(canonical);
    if (key !== undefined) return { table: reads.names.get(folded) ?? group.name, key, seq, reason: 'row-changed' };
  }
  return null;
}

/** PRIMARY KEY values of a record in PRIMARY KEY order (`pk` holds each column's 1-based ordinal or 0). */
function pkValues(fields: readonly (Value | undefined)[], pk: Uint8Array): Value[] {
  const ordered: [number, Value][] = [];
  for (let i = 0; i < pk.length; i++) if (pk[i]! > 0) ordered.push([pk[i]!, fields[i] ?? null]);
  if (ordered.length > 1) ordered.sort((a, b) => a[0] - b[0]);
  return ordered.map((pair) => pair[1]);
}

/**
 * A key as a string under SQLite's comparison: INTEGER and REAL compare by numeric value (1 = 1.0),
 * TEXT and BLOB by bytes, and the storage classes never equal one another.
 */
function canonicalKey(values: readonly Value[]): string {
  let out = '';
  for (const value of values) out += `${canonicalValue(value)}\u0000`;
  return out;
}

function canonicalValue(value: Value): string {
  if (value === null) return 'n';
  if (typeof value === 'bigint') return `i${value}`;
  if (typeof value === 'number') return Number.isInteger(value) && Number.isSafeInteger(value) ? `i${value}` : `r${Object.is(value, -0) ? 0 : value}`;
  if (typeof value === 'string') return `t${value}`;
  const bytes = value instanceof SqlText ? value.bytes : value;
  return `${value instanceof SqlText ? 'x' : 'b'}${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

/** Validates declarations against the schema the plan read and keys them for lookups. */
/** @internal Exported for the benchmark. */
export function buildReadSet(db: DatabaseSync, reads: readonly ReadDeclaration[]): ReadSet {
  const set: ReadSet = { rows: new Map(), tables: new Set(), queries: [], names: new Map() };
  const schemas = new Map<string, KeyColumn[]>();
  for (const read of reads) {
    if ('sql' in read) {
      const params = (read.params ?? []) as SQLInputValue[];
      set.queries.push({ sql: read.sql, params, digest: digestQuery(db, read.sql, params) });
      continue;
    }
    const folded = foldName(read.table);
    let columns = schemas.get(folded);
    if (columns === undefined) schemas.set(folded, (columns = keyColumnsOf(db, read.table)));
    set.names.set(folded, read.table);
    if (!('key' in read)) {
      set.tables.add(folded);
      continue;
    }
    const values = keyValuesOf(read.table, columns, read.key);
    let keys = set.rows.get(folded);
    if (keys === undefined) set.rows.set(folded, (keys = new Map()));
    keys.set(canonicalKey(values), values.map(displayValue));
  }
  return set;
}

interface KeyColumn {
  name: string;
  affinity: 'integer' | 'text' | 'blob' | 'real' | 'numeric';
}

/** The PRIMARY KEY columns of `table` in key order. @throws RangeError for an unknown or keyless table. */
function keyColumnsOf(db: DatabaseSync, table: string): KeyColumn[] {
  const rows = db.prepare('SELECT name, type, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(table);
  const exists = rows.length > 0 || db.prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE`).get(table) !== undefined;
  if (!exists) throw new RangeError(`optimisticWrite: reads names table ${JSON.stringify(table)}, which does not exist`);
  return rows.map((row) => ({ name: String(row.name), affinity: affinityOf(String(row.type ?? '')) }));
}

/** SQLite's column affinity rules (datatype3.html §3.1), in their order. */
function affinityOf(declared: string): KeyColumn['affinity'] {
  const type = declared.toUpperCase();
  if (type.includes('INT')) return 'integer';
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return 'text';
  if (type.includes('BLOB') || type === '') return 'blob';
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return 'real';
  return 'numeric';
}

function keyValuesOf(table: string, columns: KeyColumn[], key: KeyValue | readonly KeyValue[] | Readonly<Record<string, KeyValue>>): Value[] {
  if (columns.length === 0) throw new RangeError(`optimisticWrite: table ${JSON.stringify(table)} has no PRIMARY KEY; declare the whole table instead`);
  const given = Array.isArray(key) ? key : isKeyObject(key) ? columns.map((c) => byColumn(table, key, c.name)) : [key];
  if (isKeyObject(key) && Object.keys(key).length !== columns.length) throw new RangeError(`optimisticWrite: the key of ${table} has columns ${columns.map((c) => c.name).join(', ')}`);
  if (given.length !== columns.length) throw new RangeError(`optimisticWrite: the key of ${table} has ${columns.length} column(s), ${given.length} given`);
  return given.map((value, i) => withAffinity(value as KeyValue, columns[i]!.affinity));
}

function isKeyObject(key: unknown): key is Readonly<Record<string, KeyValue>> {
  return key !== null && typeof key === 'object' && !Array.isArray(key) && !(key instanceof Uint8Array);
}

function byColumn(table: string, key: Readonly<Record<string, KeyValue>>, column: string): KeyValue {
  const name = Object.keys(key).find((k) => foldName(k) === foldName(column));
  if (name === undefined) throw new RangeError(`optimisticWrite: the key of ${table} lacks column ${column}`);
  return key[name]!;
}

/** The value SQLite would store for `value` in a column of `affinity` (datatype3.html §3). */
function withAffinity(value: KeyValue, affinity: KeyColumn['affinity']): Value {
  if (typeof value === 'bigint' || value === null || value instanceof Uint8Array) return affinity === 'text' && typeof value === 'bigint' ? value.toString() : value;
  if (affinity === 'text') return typeof value === 'number' ? formatReal(value) : value;
  if (affinity === 'blob' || typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (trimmed === '' || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return value;
  if (/^[+-]?\d+$/.test(trimmed) && affinity !== 'real') return BigInt(trimmed);
  return Number(trimmed);
}

/** An integral JavaScript number is taken as the INTEGER it names (as `canonicalValue` compares it). */
function formatReal(value: number): string {
  return String(value);
}

function displayValue(value: Value): KeyJson[number] {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return { $blob: Buffer.from(value).toString('hex') };
  if (value instanceof SqlText) return { $textHex: Buffer.from(value.bytes).toString('hex') };
  return value;
}

/** The query's rows as one string, exact for every storage class (integers read as bigints). */
function digestQuery(db: DatabaseSync, sql: string, params: SQLInputValue[]): string {
  const statement = db.prepare(sql);
  statement.setReadBigInts(true);
  const rows = statement.all(...params);
  return JSON.stringify(rows, (_key, value: unknown) => {
    if (typeof value === 'bigint') return `i${value}`;
    if (value instanceof Uint8Array) return `b${Buffer.from(value).toString('hex')}`;
    if (typeof value === 'number') return `r${value}`;
    if (typeof value === 'string') return `t${value}`;
    return value;
  });
}

function describe(conflict: Conflict): string {
  if (conflict.reason === 'row-changed') return `${conflict.table} ${JSON.stringify(conflict.key)} was changed by entry ${conflict.seq}`;
  if (conflict.reason === 'table-changed') return `table ${conflict.table} was changed by entry ${conflict.seq}`;
  if (conflict.reason === 'query-changed') return `the result of a declared query changed by entry ${conflict.seq}`;
  return `entry ${conflict.seq} is a ${conflict.reason === 'resync' ? 'resync' : 'schema change'}`;
}

function backoffFor(backoffMs: number, attempt: number): number {
  const base = Math.min(BACKOFF_MS_MAX, backoffMs * 2 ** (attempt - 1));
  return base / 2 + Math.random() * base / 2;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return abortable(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), signal).finally(() => clearTimeout(timer));
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}
