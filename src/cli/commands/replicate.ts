/** `changetrail replicate <source> <replica.db>`: catch a read replica up (and keep it up with --follow). */
import { openReplica, type Replica, type ReplicaProgress } from '../../replica/replica.js';
import { readReplicaStatus } from '../../replica/replica-status.js';
import { isNatsAddress } from '../../replica/nats-address.js';
import type { NatsReplicaSource } from '../../replica/nats-source.js';
import { NATS_OPTIONS, natsOptionsFrom, printNatsEvent, untilConnected } from '../nats-options.js';
import { statSync } from 'node:fs';
import { defineCommand } from '../command.js';
import { trackedDatabase } from '../helpers.js';
import { escapeControl, shortHash } from '../format.js';
import type { Output } from '../output.js';

/** Exit codes of a catch-up interrupted by a signal (128 + its number, as `verify`). */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** Progress lines are redrawn at most this often on a TTY. */
const PROGRESS_INTERVAL_MS = 200;

export const replicate = defineCommand({
  name: 'replicate',
  summary: 'create or catch up a read replica of a database (--follow keeps it up)',
  args: ['source', 'replica.db'],
  options: {
    follow: { type: 'boolean', description: 'keep applying entries as the primary commits them, until SIGINT/SIGTERM' },
    rebuild: { type: 'boolean', description: 'start the replica over from the newest checkpoint or resync snapshot (genesis when there is none)' },
    force: { type: 'boolean', description: 'replace <replica.db> even if it is not a replica of this journal (its content is lost)' },
    register: { type: 'string', value: 'name', description: 'register the replica\'s position under <name> in the source journal, so pruning keeps what it has not applied (writes <source>.changes/followers/)' },
    ...NATS_OPTIONS,
  },
  description: '<source> is the primary database (its journal is <source>.changes/), a journal directory, or a\n' +
    'stream shipped by `changetrail ship`: nats://host:4222/<name> (every frame is verified before it is applied;\n' +
    'a replica behind the stream\'s retained history starts over from the newest snapshot and says so).\n' +
    'Applies every committed entry exactly once, in order; the position is stored in the replica in the same\n' +
    'transaction as each apply, so an interrupted run resumes where it stopped. SIGINT/SIGTERM stop between\n' +
    'entries. Never takes the writers\' lock.',
  examples: ['changetrail replicate app.db replica.db', 'changetrail replicate nats://10.0.0.5:4222/app replica.db --follow', 'changetrail replicate app.db replica.db --follow', 'changetrail replicate app.db.changes replica.db --rebuild'],
  async run({ args, options, out }) {
    const controller = new AbortController();
    let stoppedBy: 'SIGINT' | 'SIGTERM' | null = null;
    const onSigint = (): void => {
      stoppedBy = 'SIGINT';
      controller.abort();
    };
    const onSigterm = (): void => {
      stoppedBy = 'SIGTERM';
      controller.abort();
    };
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigterm);
    try {
      const remote = isNatsAddress(args[0]!);
      const opened: { source: NatsReplicaSource | null } = { source: null };
      // The NATS client (~40 ms to load) only for a nats:// source.
      const natsSource = remote ? (await import('../../replica/nats-source.js')).natsSource : null;
      const open = async (): Promise<Replica> => {
        const source = natsSource !== null ? natsSource({
          clientName: 'changetrail replicate', ...natsOptionsFrom(args[0]!, options, 'replicate'),
          ...(options.follow ? { onEvent: printNatsEvent('replicate', out) } : {}),
        }) : localSource(args[0]!);
        try {
          const replica = await openReplica(args[1]!, { source, rebuild: options.rebuild ?? false, force: options.force ?? false, ...(options.register === undefined ? {} : { followerName: options.register }) });
          if (typeof source !== 'string') opened.source = source;
          return replica;
        } catch (error) {
          if (typeof source !== 'string') source.close();
          throw error;
        }
      };
      const replica = remote && options.follow ? await untilConnected(open, controller.signal, out) : await open();
      replica.on('stranded', (error) => {
        if (out.json) out.record({ kind: 'stranded', ...error.details });
        else out.notice(`the source no longer holds entry ${error.details.seq} (its history begins at ${error.details.earliestSeq}): rebased on the snapshot at entry ${error.details.checkpointSeq}`);
      });
      if (options.follow && remote) replica.on('retry', (error, attempt, delayMs) => reportRetry(error, attempt, delayMs, out));
      const stopProgress = showProgress(replica, out);
      try {
        if (options.follow) {
          if (!out.json) out.notice(`following ${escapeControl(replica.status().source)} into ${escapeControl(replica.path)} (Ctrl-C stops)`);
          await replica.follow({ signal: controller.signal });
        } else {
          await replica.sync({ signal: controller.signal });
        }
      } finally {
        stopProgress();
      }
      const status = replica.status();
      await replica.close();
      opened.source?.close();
      out.emit(status, () => `${escapeControl(status.replica)}: entry ${status.appliedSeq} ${shortHash(status.appliedHash)} of ${status.sourceHeadSeq} (journal ${status.journalId})`);
      // Stopping is how --follow ends (0); a catch-up cut short by a signal exits as interrupted (as verify).
      return stoppedBy === null || options.follow ? 0 : SIGNAL_EXIT_CODES[stoppedBy];
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    }
  },
});

/** A transient failure `--follow` rides out: one line on stderr (NDJSON with --json), so a retry loop is never silent. */
function reportRetry(error: Error, attempt: number, delayMs: number, out: Output): void {
  const code = (error as { code?: unknown }).code;
  printNatsEvent('replicate', out)({ kind: 'retry', code: typeof code === 'string' ? code : 'INTERNAL', reason: error.message, attempt, delayMs });
}

/** Entries applied / remaining and the rate, redrawn in place on a terminal (stderr); nothing otherwise. */
function showProgress(replica: Replica, out: Output): () => void {
  if (out.json || process.stderr.isTTY !== true) return () => undefined;
  let lastMs = 0;
  let shown = false;
  const onProgress = (progress: ReplicaProgress): void => {
    const now = performance.now();
    if (now - lastMs < PROGRESS_INTERVAL_MS || progress.targetSeq - progress.appliedSeq === 0 && !shown) return;
    lastMs = now;
    shown = true;
    const rate = progress.elapsedMs > 0 ? Math.round(progress.entriesApplied / (progress.elapsedMs / 1000)) : 0;
    process.stderr.write(`\r\u001b[Kapplied ${progress.appliedSeq}/${progress.targetSeq}, ${progress.targetSeq - progress.appliedSeq} remaining, ${rate} entries/s`);
  };
  replica.on('progress', onProgress);
  return () => {
    replica.off('progress', onProgress);
    if (shown) process.stderr.write('\r\u001b[K');
  };
}

/**
 * `changetrail status <replica.db>` for a replica (called by the status command when its argument is a
 * replica rather than a journaled database): position, source head and lag.
 */
export async function printReplicaStatus(path: string, out: Output): Promise<number> {
  const status = await readReplicaStatus(path);
  if (out.json) {
    out.record(status);
    return 0;
  }
  out.line(`replica    ${escapeControl(status.replica)}`);
  out.line(`source     ${escapeControl(status.source)} (journal ${status.journalId})`);
  out.line(`applied    entry ${status.appliedSeq} ${out.paint(shortHash(status.appliedHash), 'yellow')}`);
  out.line(`source at  entry ${status.sourceHeadSeq}`);
  out.line(`lag        ${status.lagEntries === 0 ? 'none (caught up)' : `${status.lagEntries} entries, oldest ${Math.round(status.lagMs)} ms old`}`);
  return 0;
}

/** A local source as given: a journal directory, or a database that must be tracked (else "run init"). */
function localSource(source: string): string {
  return statSync(source, { throwIfNoEntry: false })?.isDirectory() === true ? source : trackedDatabase('replicate', source);
}
