/**
 * What holds back pruning (journal/FORMAT.md §11.3): **pins** of readers at work (a restore, a replica
 * bootstrapping) and **registered followers** (local replicas, the NATS shipper's acknowledged position).
 *
 * - A pin `pins/<pid>-<random>.json` says "this process reads the state at `seq` and entries after it".
 *   It lives as long as its process: one whose pid is gone from this host is ignored (and removed by the
 *   next prune), so a SIGKILLed restore holds nothing back. A pin of another host expires after
 *   {@link PIN_FOREIGN_HOST_TTL_MS}.
 * - A follower `followers/<name>.json` records the position the follower has applied (or acknowledged);
 *   pruning keeps the entries after it while it is within the user's hold limits (entries behind the
 *   head, age of its last report). One past them is no longer waited for: it gets HISTORY_PRUNED and
 *   rebases on the newest checkpoint.
 *
 * Race-free with a concurrent prune by ordering (the Dekker pattern): a reader writes its pin, then reads
 * `base`; a prune writes `base`, then reads the pins, and deletes only below both. Either the prune sees
 * the pin, or the reader sees the new base (and plans from it).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { errnoOf, io, readSmallFile, writeFileDurably } from './files.js';
import type { Position } from './position.js';

export const PINS_DIR = 'pins';
export const FOLLOWERS_DIR = 'followers';
/** A pin written on another host is honoured this long (its process cannot be checked from here). */
export const PIN_FOREIGN_HOST_TTL_MS = 24 * 60 * 60 * 1000;
/** Follower names: what a file name can hold on every platform. */
export const FOLLOWER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RECORD_BYTES_MAX = 4096;

/** A reader's pin. */
export interface Pin {
  readonly seq: number;
  readonly pid: number;
  readonly host: string;
  readonly createdAtMs: number;
  readonly purpose: string;
}

/** A registered follower's last reported position. */
export interface FollowerRecord {
  readonly name: string;
  readonly journalId: string;
  readonly seq: number;
  readonly hash: string;
  readonly updatedAtMs: number;
}

/** A held pin; `release()` is idempotent. */
export interface PinHandle {
  readonly seq: number;
  release(): void;
}

/**
 * Pins the state at `seq` (and the entries after it) in the journal `dir` until released or until this
 * process exits. Callers then read `base` and check that `seq` is still retained.
 *
 * @throws ChangetrailError IO_ERROR (e.g. no write access to the journal directory).
 */
export function pinRetained(dir: string, seq: number, purpose: string): PinHandle {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('pinRetained: seq must be an integer >= 0');
  const pinsDir = join(dir, PINS_DIR);
  const name = `${process.pid}-${randomBytes(6).toString('hex')}.json`;
  const pin: Pin = { seq, pid: process.pid, host: hostname(), createdAtMs: Date.now(), purpose };
  writePin(dir, pinsDir, name, new TextEncoder().encode(`${JSON.stringify(pin)}\n`));
  let released = false;
  return {
    seq,
    release: () => {
      if (released) return;
      released = true;
      rmSync(join(pinsDir, name), { force: true });
      // The last pin takes the directory along: a reader leaves the journal directory as it found it.
      try {
        rmdirSync(pinsDir);
      } catch {
        // Another reader's pin is there (or the directory is already gone).
      }
    },
  };
}

/** Creates `pins/` and the pin; a reader releasing the last pin may remove `pins/` in between: retried. */
function writePin(dir: string, pinsDir: string, name: string, bytes: Uint8Array): void {
  for (let attempt = 1; ; attempt++) {
    io('create pins directory', pinsDir, () => mkdirSync(pinsDir, { recursive: true, mode: subdirectoryMode(dir) }));
    try {
      return writeFileDurably(pinsDir, name, bytes);
    } catch (error) {
      const vanished = ChangetrailError.is(error, 'IO_ERROR') && error.details.errno === 'ENOENT';
      if (!vanished || attempt >= 5) throw error;
    }
  }
}

/**
 * Pins the journal in `dir` from before it is opened until released (seq 0: everything that is there).
 * A reader without write access to the journal directory reads unpinned: a prune racing it then fails
 * the read with HISTORY_PRUNED, never silently. Returns null then.
 */
export function pinWhileReading(dir: string, purpose: string): PinHandle | null {
  try {
    return pinRetained(dir, 0, purpose);
  } catch (error) {
    const errno = ChangetrailError.is(error, 'IO_ERROR') ? error.details.errno : errnoOf(error);
    if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS' || errno === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Pins that hold: of live processes on this host, or recent ones of other hosts. With `removeDead`,
 * pins of dead processes are deleted.
 */
export function livePins(dir: string, options: { removeDead?: boolean; nowMs?: number } = {}): Pin[] {
  const pinsDir = join(dir, PINS_DIR);
  const now = options.nowMs ?? Date.now();
  const pins: Pin[] = [];
  for (const name of listRecords(pinsDir)) {
    const pin = readRecord(join(pinsDir, name)) as Partial<Pin> | null;
    if (pin === null || !isPin(pin)) continue;
    if (pinHolds(pin, now)) pins.push(pin);
    else if (options.removeDead === true) rmSync(join(pinsDir, name), { force: true });
  }
  return pins;
}

function isPin(pin: Partial<Pin>): pin is Pin {
  return Number.isSafeInteger(pin.seq) && Number.isSafeInteger(pin.pid) && typeof pin.host === 'string' && Number.isSafeInteger(pin.createdAtMs);
}

function pinHolds(pin: Pin, now: number): boolean {
  if (pin.host !== hostname()) return now - pin.createdAtMs < PIN_FOREIGN_HOST_TTL_MS;
  return !processGone(pin.pid);
}

/** Whether process `pid` of this host provably no longer exists (ESRCH). A reused pid counts as alive. */
export function processGone(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return errnoOf(error) === 'ESRCH';
  }
}

/**
 * Registers (or moves) follower `name` at `position` in the journal `dir`: pruning keeps the entries
 * after it, within the hold limits of the retention policy. Call it again as the follower advances (it
 * is one small durable file write; followers report every few seconds, not per entry).
 *
 * @example
 * registerFollower(`${db}.changes`, 'nats-shipper', acknowledged);
 * @throws TypeError for a bad name. ChangetrailError IO_ERROR.
 */
export function registerFollower(dir: string, name: string, position: Position): void {
  if (typeof name !== 'string' || !FOLLOWER_NAME.test(name)) throw new TypeError('registerFollower: name must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit');
  const followersDir = join(dir, FOLLOWERS_DIR);
  io('create followers directory', followersDir, () => mkdirSync(followersDir, { recursive: true, mode: subdirectoryMode(dir) }));
  const record: FollowerRecord = { name, journalId: position.journalId, seq: position.seq, hash: position.hash, updatedAtMs: Date.now() };
  writeFileDurably(followersDir, `${name}.json`, new TextEncoder().encode(`${JSON.stringify(record)}\n`));
}

/** Removes follower `name`'s registration (it no longer holds anything back). Idempotent. */
export function unregisterFollower(dir: string, name: string): void {
  if (typeof name !== 'string' || !FOLLOWER_NAME.test(name)) throw new TypeError('unregisterFollower: bad name');
  rmSync(join(dir, FOLLOWERS_DIR, `${name}.json`), { force: true });
}

/** Every registered follower of journal `journalId`, as last reported. */
export function listFollowers(dir: string, journalId: string): FollowerRecord[] {
  const followersDir = join(dir, FOLLOWERS_DIR);
  const followers: FollowerRecord[] = [];
  for (const name of listRecords(followersDir)) {
    const record = readRecord(join(followersDir, name)) as Partial<FollowerRecord> | null;
    if (record === null || record.journalId !== journalId || !Number.isSafeInteger(record.seq) || !Number.isSafeInteger(record.updatedAtMs) || typeof record.name !== 'string') continue;
    followers.push(record as FollowerRecord);
  }
  return followers.sort((a, b) => a.seq - b.seq);
}

/** Subdirectories get the journal directory's own mode: every writer that may write it may pin and register. */
function subdirectoryMode(dir: string): number {
  return io('stat', dir, () => statSync(dir).mode & 0o777);
}

function listRecords(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => name.endsWith('.json') && !name.startsWith('.'));
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
}

/** A record that vanished or is unreadable JSON is skipped (a prune must not fail on a stray file). */
function readRecord(path: string): unknown {
  try {
    const bytes = readSmallFile(path, RECORD_BYTES_MAX);
    return bytes === null ? null : JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
