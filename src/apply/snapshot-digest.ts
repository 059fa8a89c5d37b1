/** SHA-256 and size of a snapshot file (read in 1 MiB chunks: snapshots can be large). Never the live database. */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { io } from '../journal/files.js';

export function digestSnapshotFile(path: string): { sha256: Uint8Array; size: number } {
  return io('digest', path, () => {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    const fd = openSync(path, 'r');
    try {
      for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
      return { sha256: new Uint8Array(hash.digest()), size: fstatSync(fd).size };
    } finally {
      closeSync(fd);
    }
  });
}
