/** `checkFilesystem`: refusal of network and clustered filesystems (write-admission.md §2.9). */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/errors.js';
import { checkFilesystem, UNSAFE_FILESYSTEM_TYPES } from '../../src/admission/lock.js';

function refusal(type: number | bigint, path = '/srv/data'): unknown {
  try {
    checkFilesystem(path, { statfs: () => ({ type }) });
    return null;
  } catch (error) {
    return error;
  }
}

describe('checkFilesystem', () => {
  it('ok: the real temporary directory passes', () => {
    expect(() => checkFilesystem(tmpdir())).not.toThrow();
  });

  it('err: every network or clustered filesystem magic is refused with UNSAFE_FILESYSTEM', () => {
    expect(UNSAFE_FILESYSTEM_TYPES.size).toBe(13);
    for (const [magic, name] of UNSAFE_FILESYSTEM_TYPES) {
      const error = refusal(magic);
      expect(ChangetrailError.is(error, 'UNSAFE_FILESYSTEM')).toBe(true);
      expect((error as ChangetrailError<'UNSAFE_FILESYSTEM'>).details).toEqual({ path: '/srv/data', filesystem: name });
    }
  });

  it('err: signed and bigint renderings of a magic are recognised', () => {
    expect((refusal(0xff534d42 | 0) as ChangetrailError<'UNSAFE_FILESYSTEM'>).details.filesystem).toBe('cifs');
    expect((refusal(0x6969n) as ChangetrailError<'UNSAFE_FILESYSTEM'>).details.filesystem).toBe('nfs');
  });

  it('ok: local filesystems pass (ext4, xfs, btrfs, tmpfs, overlayfs, zfs)', () => {
    for (const magic of [0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1]) expect(refusal(magic)).toBe(null);
  });

  it('ok: allowUnsafe accepts a network filesystem', () => {
    expect(() => checkFilesystem('/mnt/nfs', { allowUnsafe: true, statfs: () => ({ type: 0x6969 }) })).not.toThrow();
  });

  it('err: a path that cannot be examined is IO_ERROR', () => {
    let error: unknown = null;
    try {
      checkFilesystem(join(tmpdir(), 'does-not-exist', 'x'));
    } catch (e) {
      error = e;
    }
    if (process.platform !== 'linux') return;
    expect(ChangetrailError.is(error, 'IO_ERROR')).toBe(true);
    expect((error as ChangetrailError<'IO_ERROR'>).details).toMatchObject({ operation: 'statfs', errno: 'ENOENT' });
  });

  it('err: misuse is a TypeError', () => {
    expect(() => checkFilesystem('')).toThrow(TypeError);
  });
});
