/**
 * The ticket queue that makes handoff fair (journal/LOCK.md §6).
 *
 * A waiter creates `lock.queue/<seq>` (16 decimal digits, O_EXCL, the next number after the largest it
 * saw), so tickets sort in arrival order. Only the oldest live ticket may `mkdir` the lock; an arrival
 * that finds any ticket queues behind it instead of barging, so a process releasing and re-acquiring in a
 * loop cannot starve the others. Each waiter watches only the ticket just ahead of it (the ZooKeeper lock
 * recipe), so one release wakes one process. Tickets are refreshed like a heartbeat and retired by the same
 * proofs as locks; the queue is advisory (fairness only), never part of mutual exclusion.
 */
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, constants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { ioError } from '../journal/files.js';
import {
  changedAtNs, createFileExclusive, elapsedMs, errnoOf, lstatOrNull, PROBE_PREFIX, randomHex, readFilesystemNowNs, readSmallFile, removeQuietly,
  writeWhole,
} from './lock-files.js';
import { OWNER_BYTES_MAX, parseLockTicket, type LockTicket, type OwnerParse } from './lock-owner.js';

const TICKET_NAME = /^\d{16}$/;
/** Prefix of a process's prepared ticket file in the queue directory. */
export const PREPARED_PREFIX = 'proc-';
const TICKET_DIGITS = 16;
/** Attempts at the next free number before giving up (each failure means another waiter took it). */
const CREATE_ATTEMPTS_MAX = 1000;

/** A ticket this process owns. */
export interface OwnTicket {
  name: string;
  path: string;
  dev: bigint;
  ino: bigint;
}

/** A ticket as another waiter sees it. */
export interface TicketObservation {
  name: string;
  parse: OwnerParse<LockTicket>;
  /** Changes whenever its owner refreshes it. */
  fingerprint: string;
}

/** True when any ticket is queued (an arrival must then queue too). */
export function queueHasTickets(queueDir: string): boolean {
  return listTickets(queueDir).length > 0;
}

/** Ticket names, oldest first. An absent queue directory is an empty queue. */
export function listTickets(queueDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(queueDir);
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return [];
    throw ioError('readdir', queueDir, cause);
  }
  return names.filter((name) => TICKET_NAME.test(name)).sort();
}

/**
 * Takes the next ticket number: `link()` of this process's prepared ticket file (`lock.queue/proc-<hex>`,
 * holding `text`) to `<seq>`, which fails with EEXIST if another waiter took that number. A link costs
 * 12 µs against 38 µs for creating and writing a file on the test VM; several tickets of one process may
 * share the inode, which is harmless (refreshing one refreshes all).
 */
export function createTicket(queueDir: string, text: string): OwnTicket {
  for (let round = 0; round < 2; round += 1) {
    const ticket = linkNextTicket(queueDir, preparedTicket(queueDir, text));
    if (ticket !== null) return ticket;
  }
  throw ioError('link', queueDir, Object.assign(new Error('the prepared ticket keeps vanishing'), { code: 'ENOENT' }));
}

/** Links `prepared` to the next free number; null if `prepared` vanished (garbage collection). */
function linkNextTicket(queueDir: string, prepared: PreparedTicket): OwnTicket | null {
  const last = listTickets(queueDir).at(-1);
  let seq = last === undefined ? 1n : BigInt(last) + 1n;
  for (let attempt = 0; attempt < CREATE_ATTEMPTS_MAX; attempt += 1, seq += 1n) {
    const name = seq.toString().padStart(TICKET_DIGITS, '0');
    const path = join(queueDir, name);
    try {
      linkSync(prepared.path, path);
      return { name, path, dev: prepared.dev, ino: prepared.ino };
    } catch (cause) {
      const code = errnoOf(cause);
      if (code === 'ENOENT') {
        preparedTickets.delete(prepared.key);
        return null;
      }
      if (code !== 'EEXIST') throw ioError('link', path, cause);
    }
  }
  throw ioError('create ticket', queueDir, Object.assign(new Error('no free ticket number'), { code: 'EAGAIN' }));
}

interface PreparedTicket {
  key: string;
  path: string;
  dev: bigint;
  ino: bigint;
}

const preparedTickets = new Map<string, PreparedTicket>();

/** This process's prepared ticket file for `text`, created on first use (or after GC removed it). */
function preparedTicket(queueDir: string, text: string): PreparedTicket {
  const key = `${queueDir}\u0000${text}`;
  const known = preparedTickets.get(key);
  const stat = known === undefined ? null : lstatOrNull(known.path);
  if (known !== undefined && stat !== null && stat.ino === known.ino && stat.dev === known.dev) return known;
  try {
    mkdirSync(queueDir, { recursive: true, mode: 0o755 });
  } catch (cause) {
    throw ioError('mkdir', queueDir, cause);
  }
  const path = join(queueDir, `${PREPARED_PREFIX}${randomHex(8)}`);
  const created = createFileExclusive(path, text);
  const prepared = { key, path, dev: created.dev, ino: created.ino };
  preparedTickets.set(key, prepared);
  return prepared;
}

/**
 * Removes prepared ticket files (and leftover probe files) not refreshed for `staleMs` in the filesystem's
 * clock: their process stopped waiting long ago, or died. Best effort.
 */
export function sweepPreparedTickets(queueDir: string, staleMs: number): void {
  try {
    const names = readdirSync(queueDir).filter((name) => name.startsWith(PREPARED_PREFIX) || name.startsWith(PROBE_PREFIX));
    if (names.length === 0) return;
    const fsNowNs = readFilesystemNowNs(queueDir);
    for (const name of names) {
      const stat = lstatOrNull(join(queueDir, name));
      if (stat !== null && elapsedMs(changedAtNs(stat), fsNowNs) > staleMs) removeQuietly(join(queueDir, name));
    }
  } catch {
    // Garbage is harmless; the next sweep retries.
  }
}

/**
 * Rewrites an own ticket in place, which bumps its mtime in the filesystem's clock. Returns false when the
 * ticket is gone or replaced (another waiter judged it stale): the caller queues again.
 */
export function refreshTicket(ticket: OwnTicket, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(ticket.path, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return false;
    throw ioError('open', ticket.path, cause);
  }
  try {
    const stat: BigIntStats = fstatSync(fd, { bigint: true });
    if (stat.ino !== ticket.ino || stat.dev !== ticket.dev) return false;
    writeWhole(fd, text, ticket.path);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Reads another waiter's ticket, or null when it is gone. */
export function observeTicket(queueDir: string, name: string): TicketObservation | null {
  const file = readSmallFile(join(queueDir, name), OWNER_BYTES_MAX);
  if (file === null) return null;
  const parse: OwnerParse<LockTicket> = file.tooLong || !file.stat.isFile()
    ? { kind: 'malformed', reason: 'not a small regular file' } : parseLockTicket(file.text);
  return { name, parse, fingerprint: `${file.stat.ino}\u0000${file.stat.mtimeNs}\u0000${file.text}` };
}

/** Removes a ticket (an own one when leaving the queue, or another one proven stale). */
export function removeTicket(queueDir: string, name: string): void {
  removeQuietly(join(queueDir, name));
}
