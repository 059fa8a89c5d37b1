/**
 * Real ENOSPC: a 2 MiB tmpfs in a private mount namespace (needs root and unshare; skipped otherwise).
 * Writes fail cleanly with IO_ERROR, nothing half-written becomes visible, and the next write succeeds
 * once space is back.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTrail, type Trail } from '../../src/index.js';
import { databaseWith } from '../helpers/db.js';

const FIXTURE = new URL('./fixtures/disk-full.mjs', import.meta.url).pathname;
/** Writes 40 entries of t (id, payload), reporting which failed how (fixtures/file-limit.mjs). */
const FILE_LIMIT = new URL('./fixtures/file-limit.mjs', import.meta.url).pathname;

function payloadDatabase(prefix: string): string {
  return databaseWith('CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)', prefix);
}

/** The messages of every entry, in order (file-limit.mjs writes entry `w<id>` for row id). */
async function messagesOf(trail: Trail): Promise<(string | null)[]> {
  const messages = [];
  for await (const entry of trail.entries()) messages.push(entry.message);
  return messages;
}
const canMount = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${mkdtempSync(join(tmpdir(), 'ct-probe-'))}`]).status === 0;

describe('disk full', () => {
  it.skipIf(!canMount)('ok: ENOSPC during append or commit fails cleanly; writing resumes when space is back', () => {
    const mount = mkdtempSync(join(tmpdir(), 'ct-tmpfs-'));
    const script = `mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" "$3" "$1"`;
    const result = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', mount, process.execPath, FIXTURE], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.failures.length).toBeGreaterThan(0);
    for (const failure of report.failures) {
      expect(failure.code, JSON.stringify(failure)).toBe('IO_ERROR');
      expect(['ENOSPC', 'SQLITE_FULL']).toContain(failure.errno);
    }
    expect(report.undoFailures.length).toBe(2);
    for (const failure of report.undoFailures) {
      expect(failure.code, JSON.stringify(failure)).toBe('IO_ERROR');
      expect(['ENOSPC', 'SQLITE_FULL']).toContain(failure.errno);
    }
    // Exactly the acknowledged writes are in the database and the journal, in order.
    expect(report.rowsBefore).toEqual(report.acked);
    expect(report.entriesBefore).toEqual(report.acked.map((id: number) => `w${id}`));
    expect(report.afterFree).toBe(report.acked.length + 1);
    expect(report.entriesAfter).toEqual([...report.entriesBefore, 'w1000']);
    expect(report.integrity).toBe('ok');
  });
});

describe('file size limit (ulimit -f): SQLite fails after the journal append and rolls back on its own', () => {
  it('ok: the orphan frame is left alone, then truncated under the lock by the next write', async () => {
    const path = payloadDatabase('ct-fsize-');
    await (await openTrail(path)).close();
    const result = spawnSync('bash', ['-c', 'ulimit -f 400 && exec "$0" "$1" "$2"', process.execPath, FILE_LIMIT, path], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.failures.length).toBeGreaterThan(0);
    for (const failure of report.failures) {
      expect(failure.code, JSON.stringify(failure)).toBe('IO_ERROR');
      expect(failure.inTransaction).toBe(false);
    }
    expect(report.failures.some((f: { errno: string }) => f.errno === 'SQLITE_IOERR')).toBe(true);
    // Without the limit: the next write repairs the journal and everything agrees.
    const trail = await openTrail(path);
    try {
      await trail.write((db2) => db2.prepare('INSERT INTO t VALUES (1000, x\'00\')').run(), { message: 'w1000' });
      expect(await messagesOf(trail)).toEqual([...report.acked.map((id: number) => `w${id}`), 'w1000']);
      expect(trail.read((db2) => db2.prepare('SELECT id FROM t ORDER BY id').all().map((r) => r.id))).toEqual([...report.acked, 1000]);
    } finally {
      await trail.close();
    }
  });
});

describe('injected I/O faults on the journal (fail the n-th call once)', () => {
  // The direct path (frames above the outbox threshold, forced here with a threshold of 0): the journal
  // is written before COMMIT, so a failure there fails the write.
  for (const fault of ['journal-write:3:EIO', 'journal-write:5:ENOSPC', 'journal-fsync:3:EIO', 'journal-fsync:4:EACCES']) {
    it(`ok: ${fault} fails that write with IO_ERROR; every other write lands and the journal agrees`, async () => {
      const path = payloadDatabase('ct-fault-');
      const result = spawnSync(process.execPath, [FILE_LIMIT, path], { encoding: 'utf8', env: { ...process.env, CHANGETRAIL_FAULT_AT: fault, CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: '0' } });
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout);
      const [, hit, errno] = fault.split(':');
      expect(report.failures).toEqual([{ id: Number(hit), code: 'IO_ERROR', errno, inTransaction: false }]);
      expect(report.acked).toHaveLength(39);
      const trail = await openTrail(path);
      try {
        expect(await messagesOf(trail)).toEqual(report.acked.map((id: number) => `w${id}`));
      } finally {
        await trail.close();
      }
    });
  }

  // The outbox path: the entry is durable at COMMIT, so a failed append or fsync after it fails no write.
  // The segment is completed from the outbox by the next write (append), or every outbox frame is
  // rewritten before any row counts as durable again (fsync, never retried as if nothing happened).
  for (const fault of ['journal-append:3:EIO', 'journal-append:7:ENOSPC', 'journal-sync:2:EIO', 'journal-sync:5:EIO']) {
    it(`ok: ${fault} after COMMIT fails no write; the journal agrees (read, verified, replayed)`, async () => {
      const path = payloadDatabase('ct-fault-');
      const result = spawnSync(process.execPath, [FILE_LIMIT, path], { encoding: 'utf8', env: { ...process.env, CHANGETRAIL_FAULT_AT: fault, CHANGETRAIL_SEGMENT_SYNC_MS: '0' } });
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(report.failures).toEqual([]);
      expect(report.acked).toHaveLength(40);
      const trail = await openTrail(path);
      try {
        expect(await messagesOf(trail)).toEqual(report.acked.map((id: number) => `w${id}`));
        expect((await trail.verify({ replay: true })).entries).toBe(40);
      } finally {
        await trail.close();
      }
    });
  }
});
