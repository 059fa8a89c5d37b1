/**
 * Every single-byte change to a committed segment is reported — at open or while reading — with a journal
 * error code; frame damage names the entry's seq and byte offset. Nothing is ever skipped silently.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { tempTrail } from '../helpers/db.js';

const JOURNAL_CODES = ['JOURNAL_CHECKSUM_MISMATCH', 'JOURNAL_MALFORMED', 'JOURNAL_TORN_TAIL', 'JOURNAL_GAP', 'JOURNAL_CHAIN_BROKEN', 'JOURNAL_BEHIND_DATABASE', 'JOURNAL_VERSION_UNSUPPORTED'];

async function readAll(path: string): Promise<void> {
  const trail = await openTrail(path);
  try {
    for await (const _entry of trail.entries()) { /* read and verify */ }
  } finally {
    await trail.close();
  }
}

describe('damage to committed journal bytes', () => {
  it('err: every single-byte flip of a committed segment is detected, with seq and offset for frames', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    for (let i = 1; i <= 3; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, 'value ${i}')`), { message: `m${i}` });
    await trail.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    const original = readFileSync(segment);
    const frameStarts = [40];
    for (let i = 0; i < 2; i++) frameStarts.push(frameStarts[i]! + 16 + original.readUInt32BE(frameStarts[i]!));
    try {
      for (let at = 0; at < original.length; at++) {
        const damaged = Buffer.from(original);
        damaged[at] = damaged[at]! ^ 0x20;
        writeFileSync(segment, damaged);
        const error = await readAll(path).then(() => null, (e: unknown) => e);
        expect(error, `byte ${at} flipped without an error`).toBeInstanceOf(ChangetrailError);
        const { code, details } = error as ChangetrailError;
        expect(JOURNAL_CODES, `byte ${at}: ${code}`).toContain(code);
        if (at >= 40 && code === 'JOURNAL_CHECKSUM_MISMATCH') {
          const frame = frameStarts.filter((start) => start <= at).length;
          expect(details, `byte ${at}`).toMatchObject({ seq: frame, offset: frameStarts[frame - 1] });
        }
      }
    } finally {
      writeFileSync(segment, original);
    }
    await readAll(path);
  });
});
