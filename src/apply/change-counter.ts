/**
 * The database file's change counter (SQLite file header, offset 24, a big-endian u32): in rollback-journal
 * mode SQLite increments it on every committed write transaction, whoever commits. changetrail records the
 * value its own commit will leave in the head row, so the next admission — in any process, after any
 * restart — can tell whether anything else committed in between.
 *
 * The counter is read with pread(2) through a descriptor SQLite already holds open for this file (found in
 * /proc/self/fd and matched by device and inode), never by opening the file: closing any descriptor of the
 * file would drop SQLite's POSIX locks (write-admission.md §2.4). Linux only; elsewhere, and in WAL mode
 * (where the counter is not bumped per commit), `read` returns null and detection relies on
 * `PRAGMA data_version` and `verify --replay`.
 */
import { readSync, statSync, type BigIntStats } from 'node:fs';
import { findHeldDescriptor, isDescriptorOf } from '../journal/held-descriptor.js';

const CHANGE_COUNTER_OFFSET = 24;

export class ChangeCounterReader {
  readonly #path: string;
  readonly #enabled: boolean;
  #fd: number | null = null;
  /** The file the last successful `read()` found at the path. */
  #target: BigIntStats | null = null;
  readonly #bytes = Buffer.alloc(4);

  constructor(path: string, journalMode: 'delete' | 'wal') {
    this.#path = path;
    this.#enabled = process.platform === 'linux' && journalMode === 'delete';
  }

  /** The current counter, or null when it cannot be read safely here. Call while SQLite holds a lock. */
  read(): number | null {
    this.#target = null;
    if (!this.#enabled) return null;
    const target = statQuietly(this.#path);
    if (target === null) return null;
    if (this.#fd === null || !isDescriptorOf(this.#fd, target)) this.#fd = findHeldDescriptor(target);
    if (this.#fd === null) return null;
    const counter = this.#readAt(this.#fd, target);
    if (counter !== null) this.#target = target;
    return counter;
  }

  /**
   * The counter of the file the last successful `read()` found at the path, through the same descriptor
   * (checked by one fstat), without looking the path up again; `read()` when there was none or the
   * descriptor is no longer that file's. For a writer that checked the path once per admission (two stats and a directory
   * scan less per write).
   */
  readAgain(): number | null {
    if (this.#fd === null || this.#target === null) return this.read();
    // Nothing runs between the check and the read (both synchronous): one fstat proves the descriptor.
    if (!isDescriptorOf(this.#fd, this.#target)) return this.read();
    return this.#readCounter(this.#fd);
  }

  #readAt(fd: number, target: BigIntStats): number | null {
    if (!isDescriptorOf(fd, target)) return null;
    const counter = this.#readCounter(fd);
    // The descriptor was checked before the read and is checked after it: the value is this file's.
    return counter !== null && isDescriptorOf(fd, target) ? counter : null;
  }

  #readCounter(fd: number): number | null {
    const bytes = this.#bytes;
    return readSync(fd, bytes, 0, 4, CHANGE_COUNTER_OFFSET) === 4 ? bytes.readUInt32BE(0) : null;
  }
}

/** The value SQLite leaves after one more committed write transaction. */
export function nextChangeCounter(counter: number): number {
  return (counter + 1) >>> 0;
}

function statQuietly(path: string): BigIntStats | null {
  try {
    return statSync(path, { bigint: true });
  } catch {
    return null;
  }
}
