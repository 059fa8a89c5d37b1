/**
 * Refusal of network and clustered filesystems (write-admission.md §2.9).
 *
 * SQLite's own fcntl locks are what fence admitted writers (the in-database epoch is checked under
 * `BEGIN IMMEDIATE`), and https://sqlite.org/useovernet.html says those locks "have been known to operate
 * incorrectly for some network filesystems. This has led to database corruption." On such a filesystem
 * neither the directory lock nor the fence can be trusted, so changetrail refuses it unless the caller
 * opts out with `allowUnsafeFilesystem: true` (for example a single-host FUSE mount the caller knows to be
 * safe). Detection uses Linux `statfs` magic numbers, as Cargo does for NFS (rust-lang/cargo#2615).
 */
import { statfsSync } from 'node:fs';
import { ChangetrailError } from '../errors.js';
import { ioError } from '../journal/files.js';

/** Linux `statfs.f_type` magic numbers (linux/magic.h and filesystem sources) of filesystems refused. */
export const UNSAFE_FILESYSTEM_TYPES: ReadonlyMap<number, string> = new Map([
  [0x6969, 'nfs'],
  [0x517b, 'smb'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x65735546, 'fuse'],
  [0x01021997, '9p'],
  [0x00c36400, 'ceph'],
  [0x5346414f, 'afs'],
  [0x73757245, 'coda'],
  [0x564c, 'ncp'],
  [0x01161970, 'gfs2'],
  [0x7461636f, 'ocfs2'],
  [0x0bd00bd0, 'lustre'],
]);

/** Options of {@link checkFilesystem}. */
export interface CheckFilesystemOptions {
  /** Accept a network filesystem anyway (the caller takes responsibility for SQLite's locking there). */
  allowUnsafe?: boolean;
  /** Replaces `fs.statfsSync` (tests). When given, the check runs on every platform. */
  statfs?: (path: string) => { type: number | bigint };
}

/**
 * Refuses a path on a network or clustered filesystem, where SQLite's locks are unreliable.
 *
 * Only Linux reports comparable magic numbers; elsewhere the check passes unless `statfs` is injected.
 * Overlayfs, tmpfs, ext4, xfs, btrfs and other local filesystems pass.
 *
 * @throws ChangetrailError UNSAFE_FILESYSTEM `{ path, filesystem }` unless `allowUnsafe`;
 *   IO_ERROR when `statfs` fails (e.g. the path does not exist).
 * @example
 * ```ts
 * checkFilesystem('/srv/data');                        // throws UNSAFE_FILESYSTEM on an NFS mount
 * checkFilesystem('/srv/data', { allowUnsafe: true }); // never throws UNSAFE_FILESYSTEM
 * ```
 */
export function checkFilesystem(path: string, options: CheckFilesystemOptions = {}): void {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('checkFilesystem: path must be a non-empty string');
  if (options.allowUnsafe === true) return;
  if (options.statfs === undefined && process.platform !== 'linux') return;
  const statfs = options.statfs ?? statfsSync;
  let type: number | bigint;
  try {
    type = statfs(path).type;
  } catch (cause) {
    throw ioError('statfs', path, cause);
  }
  const filesystem = unsafeFilesystemName(type);
  if (filesystem === null) return;
  throw new ChangetrailError('UNSAFE_FILESYSTEM',
    `check filesystem: ${path} is on ${filesystem}, where SQLite's file locks are unreliable and the database can be corrupted ` +
    '(https://sqlite.org/useovernet.html); move it to a local filesystem or pass allowUnsafeFilesystem: true to accept the risk',
    { path, filesystem });
}

/** The name of an unsafe filesystem type, or null. Accepts signed 32-bit renderings of the magic. */
export function unsafeFilesystemName(type: number | bigint): string | null {
  const magic = Number(BigInt.asUintN(32, BigInt(type)));
  return UNSAFE_FILESYSTEM_TYPES.get(magic) ?? null;
}
