/**
 * The retention policy (issue 16): set once per journal, in `<db>.changes/retention.json`, and applied by
 * every writer in the background of its normal writes — never on a write's critical path: after a write
 * resolves, a check is scheduled (at most one at a time, at most every {@link POLICY_CHECK_INTERVAL_MS});
 * when a checkpoint or a prune is due it runs as one more queued operation, holding the admission lock
 * no longer than a write does (src/write/checkpoint.ts, prune.ts).
 *
 * "Keep" limits are all honoured: history is pruned only to a checkpoint that is at least `keepEntries`
 * entries behind the head, whose entry is at least `keepMs` old, and after which at least `keepBytes` of
 * segments remain. Checkpoints are taken every `checkpointEveryEntries` entries or `checkpointEveryMs`.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ChangetrailError } from '../errors.js';
import { readSmallFile, writeFileDurably } from '../journal/files.js';
import { listSegments } from '../journal/journal-reader.js';
import type { Journal } from '../journal/journal.js';
import { retainedCheckpoints, type RetainedCheckpoint } from '../journal/retention-checkpoints.js';
import { SegmentFile } from '../journal/segment-file.js';

export const POLICY_FILE = 'retention.json';
/** Writers look at the policy at most this often (a directory listing and a few entry reads). */
export const POLICY_CHECK_INTERVAL_MS = 1_000;
const POLICY_BYTES_MAX = 4096;

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const positive = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const retentionPolicySchema = z.object({
  /** Keep at least this many entries before the head (default: no limit of this kind). */
  keepEntries: count.nullable().optional(),
  /** Keep at least this much time of history (ms; by the checkpoint entries' times). */
  keepMs: count.nullable().optional(),
  /** Keep at least this many bytes of segments. */
  keepBytes: count.nullable().optional(),
  /** Take a checkpoint once this many entries were committed since the last one. */
  checkpointEveryEntries: positive.nullable().optional(),
  /** Take a checkpoint once the last one is this old (ms) and entries were committed since. */
  checkpointEveryMs: positive.nullable().optional(),
  /** Prune automatically (with the keep limits) after each checkpoint the policy takes. Default true. */
  prune: z.boolean().optional(),
  /** How long registered followers may hold pruning back (src/write/prune.ts). */
  followers: z.object({ entriesMax: count.optional(), staleAfterMs: count.optional() }).strict().optional(),
}).strict();

export type RetentionPolicy = z.infer<typeof retentionPolicySchema>;

/**
 * The policy of the journal in `dir`, or null when none is set.
 *
 * @throws ChangetrailError JOURNAL_MALFORMED (a policy file that is not valid), IO_ERROR.
 */
export function readRetentionPolicy(dir: string): RetentionPolicy | null {
  const bytes = readSmallFile(join(dir, POLICY_FILE), POLICY_BYTES_MAX);
  if (bytes === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    parsed = undefined;
  }
  const checked = retentionPolicySchema.safeParse(parsed);
  if (!checked.success) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${POLICY_FILE}: not a valid retention policy`, { file: POLICY_FILE, offset: 0, reason: checked.error.issues[0]?.message ?? 'not JSON' });
  }
  return checked.data;
}

/** Replaces the policy durably (null removes every limit: nothing automatic happens). */
export function writeRetentionPolicy(dir: string, policy: RetentionPolicy): void {
  const checked = retentionPolicySchema.safeParse(policy);
  if (!checked.success) throw new TypeError(`retention policy: ${checked.error.issues[0]?.path.join('.')}: ${checked.error.issues[0]?.message}`);
  writeFileDurably(dir, POLICY_FILE, new TextEncoder().encode(`${JSON.stringify(checked.data, null, 2)}\n`));
}

/** Whether `policy` wants a checkpoint now, given the newest one. */
export function checkpointDue(policy: RetentionPolicy, journal: Journal, newest: RetainedCheckpoint | null, nowMs: number): boolean {
  const since = newest?.entry.seq ?? journal.base?.checkpointSeq ?? 0;
  if (journal.head.seq <= since) return false;
  if (policy.checkpointEveryEntries != null && journal.head.seq - since >= policy.checkpointEveryEntries) return true;
  if (policy.checkpointEveryMs != null) {
    const lastMs = newest?.time ?? journal.identity.manifest.createdAtMs;
    if (nowMs - lastMs >= policy.checkpointEveryMs) return true;
  }
  return false;
}

/**
 * The newest checkpoint the keep limits allow pruning to (its `at.seq`), or null when none does (or no
 * keep limit is set: a policy without one never prunes).
 */
export function pruneTarget(policy: RetentionPolicy, journal: Journal, nowMs: number): number | null {
  if (policy.prune === false || (policy.keepEntries == null && policy.keepMs == null && policy.keepBytes == null)) return null;
  const bytesFloor = policy.keepBytes == null ? Number.MAX_SAFE_INTEGER : seqKeepingBytes(journal, policy.keepBytes);
  for (const checkpoint of retainedCheckpoints(journal)) {
    if (checkpoint.at.seq <= (journal.base?.seq ?? 0)) return null;
    if (policy.keepEntries != null && journal.head.seq - checkpoint.at.seq < policy.keepEntries) continue;
    if (policy.keepMs != null && nowMs - checkpoint.time < policy.keepMs) continue;
    if (checkpoint.at.seq + 1 > bytesFloor) continue;
    return checkpoint.at.seq;
  }
  return null;
}

/**
 * The highest seq `s` such that the segments holding entries `s..head` (from the one holding `s`) are
 * at least `bytes` large: pruning to a base below `s` keeps at least that much.
 */
function seqKeepingBytes(journal: Journal, bytes: number): number {
  const segments = listSegments(journal.dir).filter((first) => first <= journal.head.seq);
  let total = 0;
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = SegmentFile.open(journal.dir, segments[i]!, false);
    total += segment?.size() ?? 0;
    segment?.close();
    if (total >= bytes) return segments[i]!;
  }
  return 0;
}

/** What a background policy pass did (for `trail.retentionState()`). */
export interface RetentionPass {
  readonly atMs: number;
  readonly checkpointSeq: number | null;
  readonly prunedTo: number | null;
  readonly error: { code: string; message: string } | null;
}
