/**
 * Observing the lock directory and judging whether it is stale (journal/LOCK.md §5).
 *
 * Fail closed: a lock is stale only with proof. Proof is either the death of the recorded owner
 * (`process-identity.ts`) or an expired heartbeat. An expired heartbeat needs two witnesses: this waiter
 * has seen the lock unchanged for longer than the stale time on its own monotonic clock, **and** the age
 * of the lock's newest mtime, measured against a probe file's mtime (the filesystem's clock), is over the
 * stale time. The first witness alone is immune to every wall clock; the second alone is immune to clock
 * skew between hosts but not to a jump of the clock the filesystem stamps with (on a local filesystem,
 * the system's wall clock), which would make every live lock look old at once.
 */
import type { BigIntStats } from 'node:fs';
import type { LockHolderSummary } from '../errors.js';
import { changedAtNs, elapsedMs, lstatOrNull, readSmallFile, type LockPaths, type SmallFile } from './lock-files.js';
import { identityOf, OWNER_BYTES_MAX, parseLockOwner, type LockOwner, type OwnerParse } from './lock-owner.js';
import { proveProcessDead, type DeathProof, type ProcessIdentity } from './process-identity.js';

/** What the lock's `owner.json` turned out to be. */
export type OwnerState = 'valid' | 'missing' | 'malformed' | 'unknown-protocol';

/** Why a lock is stale: its owner is provably gone, or its heartbeat expired. */
export type LockStaleReason = DeathProof | 'expired';

/** One consistent look at the lock directory. */
export interface LockObservation {
  dir: BigIntStats;
  owner: LockOwner | null;
  ownerState: OwnerState;
  /** The protocol number found, when `ownerState` is `valid` or `unknown-protocol`. */
  protocol: number | null;
  /** The raw text of `owner.json` (null when missing), to recognise this exact instance later. */
  ownerText: string | null;
  /** Newest mtime or ctime of the directory and `owner.json`, in the filesystem's clock (ns). */
  lastSignOfLifeNs: bigint;
  /** Changes whenever the holder beats, or the lock is replaced. */
  fingerprint: string;
}

const OBSERVE_ATTEMPTS = 3;

/**
 * Looks at the lock, or returns null when there is none. The directory is stat'ed before and after
 * reading `owner.json`; if it was replaced in between, the look is retried, so the owner record and the
 * directory describe one lock instance (or, after three changes, the newer owner with the older directory,
 * which can only make the lock look younger).
 */
export function observeLock(paths: LockPaths): LockObservation | null {
  let observation: LockObservation | null = null;
  for (let attempt = 0; attempt < OBSERVE_ATTEMPTS; attempt += 1) {
    const before = lstatOrNull(paths.lock);
    if (before === null) return null;
    const owner = before.isDirectory() ? readSmallFile(paths.owner, OWNER_BYTES_MAX) : null;
    const after = lstatOrNull(paths.lock);
    if (after === null) return null;
    observation = buildObservation(after, owner);
    if (after.ino === before.ino && after.dev === before.dev) return observation;
  }
  return observation;
}

function buildObservation(dir: BigIntStats, file: SmallFile | null): LockObservation {
  const parse: OwnerParse<LockOwner> | null = file === null ? null
    : !file.stat.isFile() || file.tooLong ? { kind: 'malformed', reason: 'not a small regular file' } : parseLockOwner(file.text);
  const ownerState: OwnerState = !dir.isDirectory() ? 'malformed' : parse === null ? 'missing' : parse.kind;
  const protocol = parse?.kind === 'valid' ? parse.value.protocol : parse?.kind === 'unknown-protocol' ? parse.protocol : null;
  const ownerChangedNs = file === null ? 0n : changedAtNs(file.stat);
  const dirChangedNs = changedAtNs(dir);
  return {
    dir,
    owner: parse?.kind === 'valid' && dir.isDirectory() ? parse.value : null,
    ownerState,
    protocol,
    ownerText: file?.text ?? null,
    lastSignOfLifeNs: dirChangedNs > ownerChangedNs ? dirChangedNs : ownerChangedNs,
    fingerprint: [dir.dev, dir.ino, dirChangedNs, file?.stat.ino, ownerChangedNs, file?.stat.size, file?.text].join('\u0000'),
  };
}

/** The stale time to apply: the larger of ours and the one the holder declared (mixed settings fail closed). */
export function effectiveStaleMs(observation: LockObservation, staleMs: number): number {
  return Math.max(staleMs, observation.owner?.staleMs ?? 0);
}

/** Proof that the owner is gone, from its identity alone (no clocks). Only a valid owner can be proven dead. */
export function proveOwnerGone(observation: LockObservation, self: ProcessIdentity): DeathProof | null {
  return observation.owner === null ? null : proveProcessDead(identityOf(observation.owner), self);
}

/** Age of the lock's last sign of life against `fsNowNs`, the filesystem's "now" (ms, may be negative). */
export function heartbeatAgeMs(observation: LockObservation, fsNowNs: bigint): number {
  return elapsedMs(observation.lastSignOfLifeNs, fsNowNs);
}

/** Age since the lock directory was created, when the filesystem reports birth times. */
export function creationAgeMs(observation: LockObservation, fsNowNs: bigint): number | null {
  return observation.dir.birthtimeNs > 0n ? elapsedMs(observation.dir.birthtimeNs, fsNowNs) : null;
}

/** The holder as shown in errors, or null when `owner.json` is not a valid record. */
export function summarizeHolder(observation: LockObservation, fsNowNs: bigint | null): LockHolderSummary | null {
  if (observation.owner === null) return null;
  const { ownerId, host, pid } = observation.owner;
  return { ownerId, host, pid, ageMs: fsNowNs === null ? null : creationAgeMs(observation, fsNowNs) };
}

/** How long one waiter has seen something unchanged, on its own monotonic clock. */
export class UnchangedTracker {
  #fingerprint: string | null = null;
  #sinceMono = 0;

  /** Records a look at `fingerprint` at `nowMono` and returns how long it has been unchanged (ms). */
  observe(fingerprint: string, nowMono: number): number {
    if (fingerprint !== this.#fingerprint) {
      this.#fingerprint = fingerprint;
      this.#sinceMono = nowMono;
    }
    return nowMono - this.#sinceMono;
  }
}
