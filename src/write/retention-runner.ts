/**
 * Applies the retention policy (retention-policy.ts) in the background of a trail's writes: after a write
 * resolves, at most one pass at a time, at most every POLICY_CHECK_INTERVAL_MS. A pass takes a checkpoint
 * and prunes through the trail's ordinary queue, so it never delays a write by more than another write
 * would (the snapshot copy runs in a worker thread, outside the lock). Failures never reach a write: the
 * last pass is reported by `trail.retentionState()`.
 */
import { ChangetrailError } from '../errors.js';
import type { Journal } from '../journal/journal.js';
import { newestCheckpoint } from '../journal/retention-checkpoints.js';
import { listFollowers, type FollowerRecord } from '../journal/retention-pins.js';
import type { CheckpointResult } from './checkpoint.js';
import type { PruneOptions, PruneResult } from './prune.js';
import { checkpointDue, POLICY_CHECK_INTERVAL_MS, pruneTarget, readRetentionPolicy, type RetentionPass, type RetentionPolicy } from './retention-policy.js';

/** What the runner needs of the trail. */
export interface RetentionRunnerContext {
  journalDir(): string;
  /** The journal at the committed head, read without the lock. */
  journal(): Journal;
  checkpoint(): Promise<CheckpointResult | null>;
  prune(options: PruneOptions): Promise<PruneResult>;
}

/** What `trail.retentionState()` reports. */
export interface RetentionState {
  readonly policy: RetentionPolicy | null;
  /** Where retained history starts (null: at genesis). */
  readonly base: { readonly seq: number; readonly checkpointSeq: number } | null;
  /** The first retained entry. */
  readonly earliestSeq: number;
  /** Registered followers, as last reported. */
  readonly followers: readonly FollowerRecord[];
  /** The last background pass of this trail, or null before the first. */
  readonly lastPass: RetentionPass | null;
}

export class RetentionRunner {
  readonly #context: RetentionRunnerContext;
  #running: Promise<void> | null = null;
  #lastCheckMs = 0;
  #lastPass: RetentionPass | null = null;
  #closed = false;

  constructor(context: RetentionRunnerContext) {
    this.#context = context;
  }

  /** Called after each write resolves: schedules a pass when one is due to be looked at. */
  afterWrite(): void {
    if (this.#closed || this.#running !== null) return;
    const now = Date.now();
    if (now - this.#lastCheckMs < POLICY_CHECK_INTERVAL_MS) return;
    this.#lastCheckMs = now;
    // setImmediate: the write's caller continues first; the pass queues behind whatever it does next.
    this.#running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#pass()).finally(() => {
      this.#running = null;
    });
  }

  /** Runs one pass now (for tests and `changetrail prune --policy`), waiting for a running one first. */
  async runNow(): Promise<RetentionPass> {
    await this.#running;
    await this.#pass();
    return this.#lastPass!;
  }

  state(): RetentionState {
    let policy: RetentionPolicy | null = null;
    try {
      policy = readRetentionPolicy(this.#context.journalDir());
    } catch {
      policy = null;
    }
    const journal = this.#context.journal();
    const base = journal.base === null ? null : { seq: journal.base.seq, checkpointSeq: journal.base.checkpointSeq };
    return { policy, base, earliestSeq: (base?.seq ?? 0) + 1, followers: listFollowers(journal.dir, journal.head.journalId), lastPass: this.#lastPass };
  }

  /** Stops scheduling passes and waits for the running one. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }

  async #pass(): Promise<void> {
    const atMs = Date.now();
    let checkpointSeq: number | null = null;
    let prunedTo: number | null = null;
    try {
      const policy = readRetentionPolicy(this.#context.journalDir());
      if (policy === null) return;
      let journal = this.#context.journal();
      if (checkpointDue(policy, journal, newestCheckpoint(journal), atMs)) {
        checkpointSeq = (await this.#context.checkpoint())?.entry.seq ?? null;
        journal = this.#context.journal();
      }
      const target = pruneTarget(policy, journal, atMs);
      if (target !== null) prunedTo = (await this.#context.prune({ before: target, followers: policy.followers ?? {} })).base?.seq ?? null;
      this.#lastPass = { atMs, checkpointSeq, prunedTo, error: null };
    } catch (error) {
      const code = error instanceof ChangetrailError ? error.code : (error as Error)?.name ?? 'Error';
      this.#lastPass = { atMs, checkpointSeq, prunedTo, error: { code, message: (error as Error)?.message ?? String(error) } };
    }
  }
}
