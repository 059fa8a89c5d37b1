/**
 * `openReplica` and the `Replica` class: a second SQLite file kept equal to a primary by applying the
 * primary's committed journal entries, in order, exactly once (journal/REPLAY.md). It never takes the
 * writers' admission lock: it only reads the journal and the primary's committed head.
 */
import { EventEmitter } from 'node:events';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ChangetrailError } from '../errors.js';
import { io } from '../journal/files.js';
import { Applier } from './applier.js';
import { createReplicaFile, rebaseReplica } from './bootstrap.js';
import { openJournalSource } from './journal-source.js';
import { readReplicaRow, readReplicaRowAt, type ReplicaRow } from './position-table.js';
import { positionOf, type Position } from '../journal/position.js';
import type { HeadWait, ReplicaSource, SourceEntry, SourceSnapshot } from './source.js';
import { Wakeup } from './wakeup.js';

/**
 * Catch-up batching: write entries are applied in one transaction until one of these is reached. Bytes
 * bound the changesets applied per transaction (memory held by SQLite's journal and page cache grows
 * with them; entries themselves are read and applied one at a time); the duration bounds how long
 * readers wait and how late an abort is noticed.
 */
const BATCH_ENTRIES_MAX = 5_000;
const BATCH_BYTES_MAX = 32 * 1024 * 1024;
const BATCH_DURATION_MS_MAX = 250;
/** A follower reports its position to the source's journal at most this often (one small durable write). */
const REGISTER_INTERVAL_MS = 1_000;
/** Polling fallback when no change hint arrives (the hint is usually immediate). */
const POLL_INTERVAL_MS = 250;
const BUSY_TIMEOUT_MS = 5_000;

/** What a replica is doing. */
export type ReplicaState = 'idle' | 'syncing' | 'following' | 'failed' | 'closed';

/** Options of {@link openReplica}. */
export interface OpenReplicaOptions {
  /** The primary database's path (its journal is beside it), a journal directory, or another {@link ReplicaSource}. */
  source: string | ReplicaSource;
  /** Start the replica over from the newest snapshot (it must be this journal's replica, or `force`). */
  rebuild?: boolean;
  /** Replace a file that is not a replica of this journal (its content is lost). */
  force?: boolean;
  /** Polling interval of `follow`, the fallback when no change hint arrives. Default 250 ms. */
  pollIntervalMs?: number;
  /** How long the follower waits for readers holding the replica's lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * How the follower's commits reach the disk. 'full' (default): `synchronous=FULL`, every applied
   * transaction durable when it commits (four fsyncs in the replica's rollback-journal mode). 'normal':
   * `synchronous=NORMAL`, two fsyncs, about half the commit time and so of the follow lag's tail. What it
   * gives up, on power loss or an OS crash only (a killed follower loses nothing): the replica may come
   * back without its last transactions, position row included, and applies them again from the journal;
   * and SQLite documents a very small chance that a power failure at the wrong moment corrupts a
   * rollback-journal database in this mode (`PRAGMA integrity_check` tells; `replicate --rebuild` recovers).
   */
  synchronous?: 'full' | 'normal';
  /**
   * Registers this replica's position under this name in the source's journal (FORMAT.md §11.3), so
   * pruning keeps what it has not applied yet (within the source's hold limits). Default: not registered
   * (following then only reads the source). Registration needs write access to the journal directory
   * and is skipped without it.
   */
  followerName?: string | null;
}

/** `replica.status()`. */
export interface ReplicaStatus {
  readonly replica: string;
  readonly source: string;
  readonly journalId: string;
  readonly appliedSeq: number;
  readonly appliedHash: string;
  readonly sourceHeadSeq: number;
  /** Entries committed on the source and not applied yet. */
  readonly lagEntries: number;
  /** 0 when caught up; else how long the replica has been behind (local clock, since it first saw the entry). */
  readonly lagMs: number;
  readonly state: ReplicaState;
}

/** Reported while catching up, after each committed batch. */
export interface ReplicaProgress {
  readonly appliedSeq: number;
  readonly targetSeq: number;
  readonly entriesApplied: number;
  readonly elapsedMs: number;
}

/** Events of a {@link Replica}. */
export interface ReplicaEvents {
  /** A transaction committed: the replica now holds every entry up to `position`. */
  applied: [position: Position];
  progress: [progress: ReplicaProgress];
  /** `follow` stopped on an error (also its rejection). Emitted only when someone listens. */
  error: [error: Error];
  /**
   * The entries after the replica's position were pruned (it fell behind the source's retention): the
   * HISTORY_PRUNED error says where retained history begins; the replica rebased on the newest base
   * state (a checkpoint) and goes on from there.
   */
  stranded: [error: ChangetrailError<'HISTORY_PRUNED'>];
  /** `follow` rides out a transient failure (a busy lock, NATS_UNAVAILABLE, …) and tries again after `delayMs`. */
  retry: [error: Error, attempt: number, delayMs: number];
  /** The replica closed. */
  closed: [];
}

/**
 * Opens (or creates) a read replica of `options.source` at `replicaPath`.
 *
 * A missing file is created from the newest snapshot (genesis, or the last resync snapshot). An existing
 * file must be this journal's replica: its recorded position is checked against the journal (same journal
 * id, same hash at its seq) and its change counter against the one its follower left.
 *
 * @example
 * const replica = await openReplica('replica.db', { source: 'app.db' });
 * await replica.sync();
 * const rows = replica.read((db) => db.prepare('SELECT * FROM users').all());
 * @throws ChangetrailError REPLICA_NOT_A_REPLICA (the file is something else; `force` replaces it),
 *   REPLICA_SOURCE_MISMATCH (it follows another journal), REPLICA_DIVERGED (its position is not in the
 *   journal), REPLICA_FOREIGN_WRITE (it was written by someone else), JOURNAL_* (damaged journal), IO_ERROR.
 */
export async function openReplica(replicaPath: string, options: OpenReplicaOptions): Promise<Replica> {
  if (typeof replicaPath !== 'string' || replicaPath.length === 0) throw new TypeError('openReplica: replicaPath must be a non-empty string');
  if (options === null || typeof options !== 'object') throw new TypeError('openReplica: options.source is required');
  if (options.synchronous !== undefined && options.synchronous !== 'full' && options.synchronous !== 'normal') {
    throw new RangeError("openReplica: synchronous must be 'full' or 'normal'");
  }
  const path = resolve(replicaPath);
  const ownsSource = typeof options.source === 'string';
  const source = typeof options.source === 'string' ? openJournalSource(options.source) : options.source;
  try {
    await source.refresh?.();
    refuseSourceItself(path, source);
    const verdict = inspectReplicaFile(path, source);
    if (verdict.kind === 'absent' || (verdict.kind !== 'replica' && options.force === true)) {
      await withPin(source, 'replica bootstrap', () => createReplicaFile(path, source, source.newestSnapshot(source.readHead())));
    } else if (verdict.kind !== 'replica') {
      throw verdict.error;
    }
    const replica = new Replica(path, source, ownsSource, options);
    try {
      await replica.open(options.rebuild === true && verdict.kind === 'replica');
    } catch (error) {
      await replica.close();
      throw error;
    }
    return replica;
  } catch (error) {
    if (ownsSource) source.close();
    throw error;
  }
}

/** The primary and its journal are never a replica's target, whatever `force` says. */
function refuseSourceItself(path: string, source: ReplicaSource): void {
  const target = canonical(path);
  const own = source.description;
  if (target === own || target.startsWith(`${own}.changes/`) || target.startsWith(`${own}/`) || target.startsWith(`${own}-`)) {
    throw new ChangetrailError('REPLICA_NOT_A_REPLICA', `open replica ${path}: that is the source ${own} (or one of its files); a replica needs a file of its own`, {
      replica: path, reason: 'the source itself',
    });
  }
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

type Verdict = { kind: 'absent' } | { kind: 'replica'; row: ReplicaRow } | { kind: 'other'; error: ChangetrailError };

/** What is at `path`: nothing, this journal's replica, or something else (never modified here). */
function inspectReplicaFile(path: string, source: ReplicaSource): Verdict {
  if (!existsSync(path) || io('stat replica', path, () => statSync(path).size) === 0) return { kind: 'absent' };
  let row: ReplicaRow | null;
  try {
    row = readReplicaRowAt(path);
  } catch (cause) {
    if (cause instanceof ChangetrailError) return { kind: 'other', error: cause };
    return { kind: 'other', error: notAReplica(path, `not a readable SQLite database (${(cause as Error).message})`) };
  }
  if (row === null) return { kind: 'other', error: notAReplica(path, 'a SQLite database without a changetrail replica position') };
  if (row.position.journalId !== source.root.journalId) {
    return {
      kind: 'other',
      error: new ChangetrailError('REPLICA_SOURCE_MISMATCH',
        `open replica ${path}: it follows journal ${row.position.journalId}, but ${source.description} is journal ${source.root.journalId} (the source was swapped or recreated). Use --force to replace the replica.`,
        { replica: path, replicaJournalId: row.position.journalId, sourceJournalId: source.root.journalId }),
    };
  }
  return { kind: 'replica', row };
}

/** Runs `fn` with the source pinned (a local journal: no prune removes the base it copies). */
async function withPin<T>(source: ReplicaSource, purpose: string, fn: () => T | Promise<T>): Promise<T> {
  const pin = source.pin?.(purpose) ?? null;
  try {
    return await fn();
  } finally {
    pin?.release();
  }
}

function notAReplica(path: string, reason: string): ChangetrailError<'REPLICA_NOT_A_REPLICA'> {
  return new ChangetrailError('REPLICA_NOT_A_REPLICA', `open replica ${path}: ${reason}; refusing to overwrite it (use --force to replace it)`, { replica: path, reason });
}

/** A read replica. Create with {@link openReplica}. */
export class Replica extends EventEmitter<ReplicaEvents> {
  readonly path: string;
  readonly #source: ReplicaSource;
  readonly #ownsSource: boolean;
  readonly #pollIntervalMs: number;
  readonly #busyTimeoutMs: number;
  readonly #synchronous: 'FULL' | 'NORMAL';
  /** Bumped by the source's change hint: wakes the follow loop. */
  readonly #wakeup = new Wakeup();
  /** Bumped after every commit: wakes waitFor. */
  readonly #appliedWakeup = new Wakeup();
  #db: DatabaseSync | null = null;
  #reader: DatabaseSync | null = null;
  #applier: Applier | null = null;
  #state: ReplicaState = 'idle';
  #failure: Error | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #following: AbortController | null = null;
  #followDone: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #sourceHead: Position;
  #behindSinceMs: number | null = null;
  /** waitFor calls sharing the internal follow they started. */
  #waiters = 0;
  #waitFollow: AbortController | null = null;
  readonly #followerName: string | null;
  #registeredAtMs = 0;
  #strandedAtOpen: ChangetrailError<'HISTORY_PRUNED'> | null = null;

  /** @internal Use {@link openReplica}. */
  constructor(path: string, source: ReplicaSource, ownsSource: boolean, options: OpenReplicaOptions) {
    super();
    this.path = path;
    this.#source = source;
    this.#ownsSource = ownsSource;
    this.#pollIntervalMs = positiveOption(options.pollIntervalMs, POLL_INTERVAL_MS, 'pollIntervalMs');
    this.#busyTimeoutMs = positiveOption(options.busyTimeoutMs, BUSY_TIMEOUT_MS, 'busyTimeoutMs');
    this.#synchronous = options.synchronous === 'normal' ? 'NORMAL' : 'FULL';
    this.#sourceHead = source.root;
    this.#followerName = options.followerName ?? null;
  }

  /** @internal Opens the follower's connection and checks the stored position against the journal. */
  async open(rebuild: boolean): Promise<void> {
    const db = new DatabaseSync(this.path, { enableForeignKeyConstraints: false, timeout: this.#busyTimeoutMs });
    this.#db = db;
    // A rollback journal (the change-counter check needs one), truncated rather than deleted at COMMIT:
    // no file created and unlinked per transaction (one-row commits on local disk, p90 3.5 → 1.1 ms,
    // p99 12 → 5.5 ms, measured). The mode belongs to this connection only; readers keep their own.
    const mode = db.prepare('PRAGMA journal_mode = TRUNCATE').get();
    if (String(mode?.journal_mode).toLowerCase() !== 'truncate') throw new Error(`replica journal_mode stayed ${String(mode?.journal_mode)}`);
    db.exec(`PRAGMA synchronous = ${this.#synchronous}`);
    const row = this.#readRow();
    this.#applier = new Applier(db, this.path, row.position, row.resume, row.changeCounter);
    await this.#source.refresh?.(row.position);
    if (rebuild) return this.#rebaseOnNewest();
    try {
      this.#checkPosition(row.position, this.#readSourceHead());
    } catch (error) {
      if (!ChangetrailError.is(error, 'HISTORY_PRUNED')) throw error;
      this.#applier.checkUntouched();
      // Told once the caller can listen: at the first sync or follow.
      return this.#stranded(error, (stranded) => { this.#strandedAtOpen = stranded; });
    }
    this.#applier.checkUntouched();
    this.#register(true);
  }

  /**
   * Applies every entry committed on the source now, and returns the position reached. Entries committed
   * while it runs are left for the next call (so it always finishes).
   *
   * @throws ChangetrailError REPLICA_FOREIGN_WRITE, REPLICA_SOURCE_MISMATCH, REPLICA_DIVERGED,
   *   CHANGESET_CONFLICT, JOURNAL_* — the replica keeps its last committed position.
   */
  sync(options: { signal?: AbortSignal } = {}): Promise<Position> {
    this.#checkUsable('sync');
    return this.#serial(() => this.#catchUp(options.signal));
  }

  /**
   * Keeps applying entries as the source commits them, until `signal` aborts (resolves) or an error stops
   * it (rejects, and emits 'error'). An abort stops between entries: the last transaction commits first.
   */
  follow(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#checkUsable('follow');
    const internal = this.#following !== null && this.#following === this.#waitFollow;
    if (this.#following !== null && !internal) throw new TypeError('follow: this replica is already following');
    // A follow started by waitFor gives way to the caller's own.
    const previous = internal ? (this.#waitFollow!.abort(), this.#followDone) : null;
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    if (options.signal?.aborted === true) controller.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    this.#following = controller;
    const done = (async () => {
      await previous?.catch(() => undefined);
      await this.#followLoop(controller.signal);
    })().finally(() => {
      options.signal?.removeEventListener('abort', stop);
      if (this.#following === controller) this.#following = null;
    });
    this.#followDone = done;
    return done;
  }

  /**
   * Resolves once entry `seq` is applied (read-your-writes: pass the seq a write on the primary returned).
   * Without a running `follow`, it syncs by itself until then.
   *
   * @throws ChangetrailError REPLICA_WAIT_TIMEOUT after `timeoutMs` (default 5000); the errors of sync.
   */
  async waitFor(seq: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Position> {
    this.#checkUsable('waitFor');
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('waitFor: seq must be an integer >= 0');
    const timeoutMs = positiveOption(options.timeoutMs, 5_000, 'timeoutMs');
    if (this.position.seq >= seq) return this.position;
    // Without a running follow, follow for as long as someone waits.
    const stopFollowing = this.#following === null ? this.#followWhileWaiting() : null;
    try {
      return await this.#awaitApplied(seq, timeoutMs, options.signal);
    } finally {
      stopFollowing?.();
    }
  }

  async #awaitApplied(seq: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Position> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const generation = this.#appliedWakeup.generation;
      if (this.position.seq >= seq) return this.position;
      if (this.#failure !== null) throw this.#failure;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || signal?.aborted === true || this.#closing !== null) {
        throw new ChangetrailError('REPLICA_WAIT_TIMEOUT', `waitFor: entry ${seq} was not applied to ${this.path} within ${timeoutMs} ms (applied: ${this.position.seq})`, {
          replica: this.path, seq, appliedSeq: this.position.seq, timeoutMs,
        });
      }
      await this.#appliedWakeup.wait(generation, Math.min(remaining, this.#pollIntervalMs), signal);
    }
  }

  /** Starts an internal follow shared by concurrent waiters; returns this waiter's release. */
  #followWhileWaiting(): () => void {
    if (this.#waiters === 0) {
      const controller = new AbortController();
      this.#waitFollow = controller;
      this.follow({ signal: controller.signal }).catch(() => undefined);
    }
    this.#waiters += 1;
    return () => {
      this.#waiters -= 1;
      if (this.#waiters === 0) this.#waitFollow?.abort();
    };
  }

  /**
   * Runs `fn(db)` in a read transaction on a read-only connection to the replica (a consistent view:
   * the follower's transactions land before or after it). Any write is refused by SQLite.
   */
  read<T>(fn: (db: DatabaseSync) => T): T {
    this.#checkUsable('read');
    checkSyncFunction(fn);
    const db = this.#openReader();
    db.exec('BEGIN');
    try {
      const result = fn(db);
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw refusedWrite(error);
    }
  }

  /** The position applied so far. */
  get position(): Position {
    return this.#applier?.position ?? this.#source.root;
  }

  get state(): ReplicaState {
    return this.#state;
  }

  /** Position, the source's head and the lag. Reads the source's committed head now. */
  status(): ReplicaStatus {
    if (this.#state !== 'closed') {
      try {
        this.#readSourceHead();
      } catch {
        // status reports; sync and follow raise.
      }
    }
    const applied = this.position;
    const lagEntries = Math.max(0, this.#sourceHead.seq - applied.seq);
    return {
      replica: this.path, source: this.#source.description, journalId: applied.journalId, appliedSeq: applied.seq, appliedHash: applied.hash,
      sourceHeadSeq: this.#sourceHead.seq, lagEntries, lagMs: lagEntries === 0 || this.#behindSinceMs === null ? 0 : Date.now() - this.#behindSinceMs,
      state: this.#state,
    };
  }

  /** Applied positions, one per committed transaction, until `signal` aborts or the replica closes. */
  async *positions(options: { signal?: AbortSignal } = {}): AsyncGenerator<Position> {
    const queue: Position[] = [];
    let wake: (() => void) | null = null;
    const onApplied = (position: Position): void => {
      queue.push(position);
      wake?.();
    };
    const onStop = (): void => wake?.();
    this.on('applied', onApplied);
    this.on('closed', onStop);
    options.signal?.addEventListener('abort', onStop);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (options.signal?.aborted === true || this.#state === 'closed') return;
        await new Promise<void>((resolveNext) => {
          wake = resolveNext;
        });
        wake = null;
      }
    } finally {
      this.off('applied', onApplied);
      this.off('closed', onStop);
      options.signal?.removeEventListener('abort', onStop);
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<Position> {
    return this.positions();
  }

  /** Stops following (between entries), waits for the running apply, and closes. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#following?.abort();
      await this.#followDone?.catch(() => undefined);
      await this.#queue.catch(() => undefined);
      if (this.#applier !== null) this.#register(true);
      this.#state = 'closed';
      this.emit('closed');
      this.#applier?.rollback();
      this.#reader?.close();
      this.#db?.close();
      if (this.#ownsSource) this.#source.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #followLoop(signal: AbortSignal): Promise<void> {
    const watch = await this.#source.watch(() => this.#wakeup.notify());
    try {
      let retries = 0;
      let wait: HeadWait = 'wait';
      while (!signal.aborted) {
        const generation = this.#wakeup.generation;
        try {
          await this.#serial(() => this.#catchUp(signal, 'following', wait));
          retries = 0;
        } catch (error) {
          // Busy locks (a writer committing, readers holding the replica) and bytes not there yet pass:
          // try again after a poll interval, backing off to 20 of them. Anything else stops following.
          if (!isTransient(error) || retries >= TRANSIENT_RETRIES_MAX) throw error;
          retries += 1;
          const delayMs = this.#pollIntervalMs * Math.min(retries, 20);
          this.emit('retry', error as Error, retries, delayMs);
          await pause(delayMs, signal);
          continue;
        }
        await this.#wakeup.wait(generation, this.#pollIntervalMs, signal);
        // Woken by a change hint, the head is read without waiting for the primary's lock; by the poll
        // (no hint for a poll interval), waiting. The hints already queued (a commit sends 4, and a busy
        // follower finds dozens) are let in first, so that one pass answers them all.
        wait = this.#wakeup.generation !== generation ? 'no-wait' : 'wait';
        await yieldToEventLoop();
      }
    } catch (error) {
      this.#fail(error as Error);
      throw error;
    } finally {
      await watch.close();
      if (this.#state === 'following') this.#state = 'idle';
    }
  }

  /** One pass: applies entries up to the head read at its start. */
  async #catchUp(signal: AbortSignal | undefined, state: ReplicaState = 'syncing', wait: HeadWait = 'wait'): Promise<Position> {
    if (this.#failure !== null) throw this.#failure;
    if (this.#strandedAtOpen !== null) {
      this.emit('stranded', this.#strandedAtOpen);
      this.#strandedAtOpen = null;
    }
    this.#state = state;
    try {
      await this.#source.refresh?.(this.position);
      const head = this.#readSourceHead(wait);
      // The full check ran at open; here the cursor proves each pass's first entry chains from the position.
      if (head.seq <= this.position.seq) this.#checkPosition(this.position, head);
      else await this.#applyUpToOrRebase(head, signal);
      return this.position;
    } catch (cause) {
      const error = ChangetrailError.is(cause, 'POSITION_MISMATCH') ? this.#diverged(this.position, cause.details.foundHash, this.#sourceHead.seq, cause) : cause;
      if (isDivergence(error)) this.#fail(error as Error);
      throw error;
    } finally {
      if (this.#state === 'syncing') this.#state = 'idle';
    }
  }

  /** Applies up to `head`; a replica whose next entries were pruned rebases on the newest base first. */
  async #applyUpToOrRebase(head: Position, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#applyUpTo(head, signal);
    } catch (error) {
      if (!ChangetrailError.is(error, 'HISTORY_PRUNED') || error.details.earliestSeq <= this.position.seq + 1) throw error;
      await this.#stranded(error);
      if (this.position.seq < head.seq) await this.#applyUpTo(head, signal);
    }
  }

  async #stranded(error: ChangetrailError<'HISTORY_PRUNED'>, tell = (stranded: ChangetrailError<'HISTORY_PRUNED'>) => { this.emit('stranded', stranded); }): Promise<void> {
    await this.#rebaseOnNewest();
    tell(error);
  }

  async #rebaseOnNewest(): Promise<void> {
    const pin = this.#source.pin?.('replica rebase') ?? null;
    try {
      await this.#rebase(this.#source.newestSnapshot(this.#readSourceHead()));
    } finally {
      pin?.release();
    }
    this.#register(true);
  }

  /** Reports the position to the source (at most once a second unless `now`); best effort. */
  #register(now: boolean): void {
    if (this.#followerName === null || this.#source.register === undefined) return;
    if (!now && Date.now() - this.#registeredAtMs < REGISTER_INTERVAL_MS) return;
    this.#registeredAtMs = Date.now();
    try {
      this.#source.register(this.#followerName, this.position);
    } catch {
      // No write access to the source's journal directory: the replica follows unregistered.
    }
  }

  async #applyUpTo(head: Position, signal: AbortSignal | undefined): Promise<void> {
    const applier = this.#applier!;
    const startedMs = performance.now();
    const startSeq = this.position.seq;
    let batch = newBatch();
    const entries = iterate(this.#source.entriesAfter(this.position, head, applier.resume));
    try {
      for (let step = entries.next(); ; step = entries.next()) {
        const next = isPromise(step) ? await step : step;
        if (next.done === true) break;
        const entry = next.value;
        // A checkpoint changes nothing: it only moves the position (its snapshot holds an earlier state).
        if (entry.kind === 'write' || entry.kind === 'checkpoint') {
          if (!applier.inBatch) {
            applier.begin();
            batch = newBatch();
          }
          applier.applyWrite(entry);
          batch.last = entry;
          batch.entries += 1;
          batch.bytes += entry.changeset.byteLength;
          // The clock is read every 64 entries: a one-row entry applies in a few microseconds.
          if (!batchFull(batch, batch.entries % 64 === 0) && signal?.aborted !== true) continue;
          this.#commitBatch(batch, head, startSeq, startedMs);
        } else {
          if (applier.inBatch) this.#commitBatch(batch, head, startSeq, startedMs);
          const position = positionOf(head.journalId, entry.seq, entry.hash);
          await this.#applyOne(entry, position);
          this.#applied(position, head, startSeq, startedMs);
        }
        // Between transactions: let timers, signals and readers run; an abort stops here.
        await yieldToEventLoop();
        if (signal?.aborted === true) return;
      }
      if (applier.inBatch) this.#commitBatch(batch, head, startSeq, startedMs);
    } finally {
      applier.rollback();
      await entries.return?.();
    }
  }

  async #applyOne(entry: SourceEntry, position: Position): Promise<void> {
    if (entry.kind === 'schema') return this.#applier!.applySchema(entry, position);
    if (entry.snapshot === undefined) throw new Error(`resync entry ${entry.seq} names no snapshot`);
    await this.#rebase({ position, ref: entry.snapshot });
  }

  async #rebase(snapshot: SourceSnapshot): Promise<void> {
    const expected = await rebaseReplica(this.path, this.#source, snapshot);
    this.#applier!.rebased(snapshot.position, expected);
  }

  #commitBatch(batch: Batch, head: Position, startSeq: number, startedMs: number): void {
    const last = positionOf(head.journalId, batch.last!.seq, batch.last!.hash);
    this.#applier!.commit(last, batch.last!.resume);
    this.#applied(last, head, startSeq, startedMs);
  }

  #applied(position: Position, head: Position, startSeq: number, startedMs: number): void {
    if (position.seq >= this.#sourceHead.seq) this.#behindSinceMs = null;
    this.#register(false);
    this.#appliedWakeup.notify();
    this.emit('applied', position);
    this.emit('progress', { appliedSeq: position.seq, targetSeq: head.seq, entriesApplied: position.seq - startSeq, elapsedMs: performance.now() - startedMs });
  }

  #readSourceHead(wait: HeadWait = 'wait'): Position {
    const head = this.#source.readHead(wait);
    if (head.journalId !== this.position.journalId) {
      throw new ChangetrailError('REPLICA_SOURCE_MISMATCH',
        `sync ${this.path}: the source ${this.#source.description} now holds journal ${head.journalId}, not ${this.position.journalId} (swapped or recreated); the replica is left as it was`,
        { replica: this.path, replicaJournalId: this.position.journalId, sourceJournalId: head.journalId });
    }
    if (head.seq > this.position.seq && this.#behindSinceMs === null) this.#behindSinceMs = Date.now();
    if (head.seq <= this.position.seq) this.#behindSinceMs = null;
    this.#sourceHead = head;
    return head;
  }

  /** The replica's position must be in the journal: not past its head, and the same hash at its seq. */
  #checkPosition(position: Position, head: Position): void {
    if (position.seq === head.seq && position.hash === head.hash) return;
    const journalHash = position.seq > head.seq ? null : this.#source.hashAt(position.seq, head);
    if (journalHash === position.hash) return;
    throw this.#diverged(position, journalHash, head.seq);
  }

  #diverged(position: Position, journalHash: string | null, headSeq: number, cause?: unknown): ChangetrailError<'REPLICA_DIVERGED'> {
    return new ChangetrailError('REPLICA_DIVERGED',
      journalHash === null
        ? `check ${this.path}: it applied entry ${position.seq}, but the source's committed head is entry ${headSeq} (the primary went back, e.g. restored from a backup)`
        : `check ${this.path}: it applied entry ${position.seq} with hash ${position.hash.slice(0, 16)}, but the journal's entry ${position.seq} is ${journalHash.slice(0, 16)}`,
      { replica: this.path, seq: position.seq, replicaHash: position.hash, journalHash, sourceHeadSeq: headSeq }, { cause });
  }

  #readRow(): ReplicaRow {
    const row = readReplicaRow(this.#db!);
    if (row === null) throw notAReplica(this.path, 'its replica position vanished');
    return row;
  }

  #openReader(): DatabaseSync {
    if (this.#reader === null) {
      this.#reader = new DatabaseSync(this.path, { readOnly: true, timeout: this.#busyTimeoutMs });
      this.#reader.exec('PRAGMA query_only = ON');
    }
    return this.#reader;
  }

  #fail(error: Error): void {
    this.#failure = error;
    this.#state = 'failed';
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #checkUsable(operation: string): void {
    if (this.#closing !== null || this.#state === 'closed') throw new TypeError(`${operation}: the replica is closed`);
  }
}

/**
 * The entries' iterator, synchronous for a local source: `for await` over a synchronous iterable awaits
 * every entry, about 1 µs each in a catch-up of one-row entries (measured), as much as applying one.
 */
function iterate(entries: Iterable<SourceEntry> | AsyncIterable<SourceEntry>): Iterator<SourceEntry> | AsyncIterator<SourceEntry> {
  return Symbol.iterator in entries ? entries[Symbol.iterator]() : entries[Symbol.asyncIterator]();
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value instanceof Promise;
}

interface Batch {
  /** The last entry applied in the batch: its position and resume token are committed with it. */
  last: SourceEntry | null;
  entries: number;
  bytes: number;
  startedMs: number;
}

function newBatch(): Batch {
  return { last: null, entries: 0, bytes: 0, startedMs: performance.now() };
}

function batchFull(batch: Batch, checkClock: boolean): boolean {
  return batch.entries >= BATCH_ENTRIES_MAX || batch.bytes >= BATCH_BYTES_MAX || (checkClock && performance.now() - batch.startedMs >= BATCH_DURATION_MS_MAX);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How many transient failures in a row `follow` rides out (at up to 20 poll intervals each) before it stops. */
const TRANSIENT_RETRIES_MAX = 50;

/** SQLITE_BUSY (5), SQLITE_LOCKED (6) and a committed tail not readable yet: worth another try. */
function isTransient(error: unknown): boolean {
  if (ChangetrailError.is(error, 'JOURNAL_TORN_TAIL') || ChangetrailError.is(error, 'NATS_UNAVAILABLE')) return true;
  const errcode = ChangetrailError.is(error, 'SQLITE_ERROR') ? error.details.errcode : (error as { errcode?: number } | null)?.errcode;
  return typeof errcode === 'number' && ((errcode & 0xff) === 5 || (errcode & 0xff) === 6);
}

/** Errors after which the replica must not continue (its state cannot be trusted, or the journal is not its own). */
function isDivergence(error: unknown): boolean {
  return ChangetrailError.is(error) && ['NATS_STREAM_MISMATCH', 'REPLICA_FOREIGN_WRITE', 'REPLICA_SOURCE_MISMATCH', 'REPLICA_DIVERGED', 'CHANGESET_CONFLICT',
    'JOURNAL_CHECKSUM_MISMATCH', 'JOURNAL_CHAIN_BROKEN', 'JOURNAL_MALFORMED', 'JOURNAL_GAP'].includes(error.code);
}

function refusedWrite(error: unknown): unknown {
  const errcode = (error as { errcode?: number } | null)?.errcode;
  if ((error as { code?: string } | null)?.code !== 'ERR_SQLITE_ERROR' || (errcode !== 8 && (Number(errcode) & 0xff) !== 8)) return error;
  return new ChangetrailError('STATEMENT_NOT_ALLOWED', `read: a replica is read-only (${(error as Error).message})`, { mode: 'read', action: 'write' }, { cause: error });
}

function checkSyncFunction(fn: unknown): void {
  if (typeof fn !== 'function') throw new TypeError('read: expected a function');
  const kind = (fn as { constructor?: { name?: string } }).constructor?.name;
  if (kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction') throw new TypeError('read: the body is async; a transaction cannot span an await');
}

function positiveOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new RangeError(`openReplica: ${name} must be a positive number`);
  return value;
}
