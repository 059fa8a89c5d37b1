/**
 * Descriptors SQLite already holds open for a file, found in /proc/self/fd and matched by device and
 * inode. Reading a database header through one of them (pread) never opens the file, and never closing
 * a descriptor of it is what keeps SQLite's POSIX locks (write-admission.md §2.4): closing any descriptor
 * of a file drops every lock this process holds on it. Linux only; elsewhere nothing is found.
 */
import { fstatSync, readdirSync, type BigIntStats } from 'node:fs';

const FD_DIR = '/proc/self/fd';

/** A descriptor of this process open on `target`'s file, or null (none, or no /proc). */
export function findHeldDescriptor(target: BigIntStats): number | null {
  let names: string[];
  try {
    names = readdirSync(FD_DIR);
  } catch {
    return null;
  }
  for (const name of names) {
    const fd = Number(name);
    if (Number.isInteger(fd) && isDescriptorOf(fd, target)) return fd;
  }
  return null;
}

/** True when `fd` is open on a regular file with `target`'s device and inode (false if it is closed). */
export function isDescriptorOf(fd: number, target: BigIntStats): boolean {
  try {
    const stats = fstatSync(fd, { bigint: true });
    return stats.isFile() && stats.ino === target.ino && stats.dev === target.dev;
  } catch {
    return false;
  }
}
