/**
 * Stale takeover and garbage collection (journal/LOCK.md §7, §9).
 *
 * A breaker never removes the lock path in place. Under the breakers' sub-lock `lock.break/` (so two
 * waiters that judged the same lock stale cannot both act, as Mercurial serializes breakers), it looks
 * again, and only if the lock is exactly what it judged stale does it `rename` it to `lock.stale-<hex>`.
 * Then it checks what it claimed: the same directory inode and the same `owner.json` text. If that
 * differs, a live lock was grabbed in a race (write-admission.md §3.9): it is neither given back (POSIX
 * `rename` would replace an empty successor directory) nor deleted, only left for GC; its holder finds it
 * gone at its next heartbeat, and the database epoch fences it meanwhile.
 */
import { mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { ioError } from '../journal/files.js';
import {
  changedAtNs, elapsedMs, errnoOf, lstatOrNull, OWNER_FILE_NAME, PROBE_PREFIX, randomHex, readFilesystemNowNs, readSmallFile,
  removeTree, renameIfPresent, SPARE_PREFIX, STALE_PREFIX, type LockPaths,
} from './lock-files.js';
import { observeLock, type LockObservation } from './lock-observe.js';
import { OWNER_BYTES_MAX } from './lock-owner.js';
import { lockTestpoint } from './lock-testpoint.js';

/** What a takeover attempt did. */
export type ClaimOutcome =
  | 'claimed'       // the stale lock is gone
  | 'changed'       // the lock changed (or vanished) since it was judged; nothing was touched
  | 'busy'          // another breaker holds `lock.break/`; nothing was touched
  | 'grabbed-live'; // a different lock was renamed away in a race; left as lock.stale-* for GC

/** Renames the judged-stale lock away and removes it, if it is still exactly `observation`. */
export function claimStaleLock(paths: LockPaths, observation: LockObservation, staleMs: number): ClaimOutcome {
  const breakIno = enterBreakLock(paths, staleMs);
  if (breakIno === null) return 'busy';
  try {
    const current = observeLock(paths);
    if (current === null || current.fingerprint !== observation.fingerprint) return 'changed';
    lockTestpoint('before-claim-rename');
    const claimed = join(paths.journalDir, `${STALE_PREFIX}${randomHex(8)}`);
    if (!renameIfPresent(paths.lock, claimed)) return 'changed';
    if (!isSameLock(claimed, observation)) return 'grabbed-live';
    removeTree(claimed);
    return 'claimed';
  } finally {
    leaveBreakLock(paths, breakIno);
  }
}

function isSameLock(claimed: string, observation: LockObservation): boolean {
  const dir = lstatOrNull(claimed);
  if (dir === null || dir.ino !== observation.dir.ino || dir.dev !== observation.dir.dev) return false;
  if (!dir.isDirectory()) return true;
  const owner = readSmallFile(join(claimed, OWNER_FILE_NAME), OWNER_BYTES_MAX);
  return (owner?.text ?? null) === observation.ownerText;
}

/**
 * Takes `lock.break/` (mkdir), retiring it first if it is older than `staleMs` in the filesystem's clock
 * (its holder died mid-takeover; a takeover lasts about a millisecond). Returns its inode, or null if busy.
 */
function enterBreakLock(paths: LockPaths, staleMs: number): bigint | null {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      mkdirSync(paths.breakLock, 0o755);
      return lstatOrNull(paths.breakLock)?.ino ?? null;
    } catch (cause) {
      if (errnoOf(cause) !== 'EEXIST') throw ioError('mkdir', paths.breakLock, cause);
    }
    const stat = lstatOrNull(paths.breakLock);
    if (stat === null) continue;
    if (elapsedMs(changedAtNs(stat), readFilesystemNowNs(paths.journalDir)) <= staleMs) return null;
    const retired = join(paths.journalDir, `${STALE_PREFIX}${randomHex(8)}`);
    if (renameIfPresent(paths.breakLock, retired)) removeTree(retired);
  }
  return null;
}

function leaveBreakLock(paths: LockPaths, breakIno: bigint): void {
  if (lstatOrNull(paths.breakLock)?.ino !== breakIno) return;
  try {
    rmdirSync(paths.breakLock);
  } catch (cause) {
    if (errnoOf(cause) !== 'ENOENT') throw ioError('rmdir', paths.breakLock, cause);
  }
}

const GARBAGE_PREFIXES = [STALE_PREFIX, SPARE_PREFIX, PROBE_PREFIX];

/**
 * Removes `lock.stale-*`, `lock.spare-*` and `lock.probe-*` entries unchanged for longer than `staleMs` in
 * the filesystem's clock: what crashed holders, breakers and waiters left behind, live locks grabbed in a
 * race (kept that long for diagnosis), and spares of processes idle that long. Each entry is first claimed
 * by a rename to a fresh `lock.stale-<hex>`, so a spare its owner is renaming into place at that moment is
 * either taken whole or not at all. Best effort: a failure here must not fail an admission. Returns the
 * number of entries removed.
 */
export function sweepLockGarbage(paths: LockPaths, staleMs: number): number {
  let removed = 0;
  try {
    const names = readdirSync(paths.journalDir).filter((name) => GARBAGE_PREFIXES.some((prefix) => name.startsWith(prefix)));
    if (names.length === 0) return 0;
    const fsNowNs = readFilesystemNowNs(paths.journalDir);
    for (const name of names) {
      const stat = lstatOrNull(join(paths.journalDir, name));
      if (stat === null || elapsedMs(changedAtNs(stat), fsNowNs) <= staleMs) continue;
      const claimed = join(paths.journalDir, `${STALE_PREFIX}${randomHex(8)}`);
      if (!renameIfPresent(join(paths.journalDir, name), claimed)) continue;
      removeTree(claimed);
      removed += 1;
    }
  } catch {
    // Garbage is harmless; the next sweep retries. An admission must not fail because of it.
  }
  return removed;
}
