/**
 * checkJournalShape and its use at open (issue 8 item 7): damaged earlier history — a deleted or
 * corrupted earlier segment, a corrupt genesis.db — is refused when a trail opens, so nothing is appended
 * to a journal that verify would reject. Real multi-segment journals written by real trails.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { checkJournalShape } from '../../src/journal/journal-shape.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { crc32 } from 'node:zlib';
import { tempTrail } from '../helpers/db.js';

async function rotated(segmentBytesTarget = 512): Promise<{ path: string; dir: string; segments: string[] }> {
  const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { segmentBytesTarget });
  for (let i = 1; i <= 12; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, '${'x'.repeat(60)}')`));
  await trail.close();
  const dir = `${path}.changes`;
  const segments = readdirSync(dir).filter((name) => name.endsWith('.seg')).sort();
  expect(segments.length).toBeGreaterThanOrEqual(3);
  return { path, dir, segments };
}

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof ChangetrailError ? { code: error.code, details: error.details } : error;
  }
}

async function openCode(path: string): Promise<unknown> {
  return openTrail(path).then(async (trail) => { await trail.close(); return null; }, (error: unknown) => (error instanceof ChangetrailError ? { code: error.code, details: error.details } : error));
}

function flip(file: string, at: number): void {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(file, bytes);
}

describe('checkJournalShape', () => {
  it('ok: a healthy rotated journal passes, in every genesis mode', async () => {
    const { path, dir } = await rotated();
    for (const genesis of ['digest', 'header', 'auto'] as const) expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path), { genesis }))).toBeNull();
    expect(await openCode(path)).toBeNull();
  });

  it('err: a deleted earlier segment is JOURNAL_BEHIND_DATABASE at open, and nothing is written', async () => {
    const { path, dir, segments } = await rotated();
    rmSync(join(dir, segments[1]!));
    expect(await openCode(path)).toMatchObject({ code: 'JOURNAL_BEHIND_DATABASE' });
    rmSync(join(dir, segments[0]!));
    expect(await openCode(path)).toMatchObject({ code: 'JOURNAL_BEHIND_DATABASE' });
    expect(readCommittedHead(path).seq).toBe(12);
  });

  it('err: a corrupted first frame of an earlier segment is JOURNAL_CHECKSUM_MISMATCH at open', async () => {
    const { path, dir, segments } = await rotated();
    flip(join(dir, segments[1]!), 40 + 20);
    expect(await openCode(path)).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH', details: { file: segments[1], offset: 40 } });
  });

  it('err: a damaged segment header is JOURNAL_CHECKSUM_MISMATCH at open', async () => {
    const { path, dir, segments } = await rotated();
    flip(join(dir, segments[0]!), 10);
    expect(await openCode(path)).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH', details: { file: segments[0] } });
  });

  it('err: a corrupt genesis.db is JOURNAL_CHECKSUM_MISMATCH at open; a truncated one in header mode too', async () => {
    const { path, dir } = await rotated();
    const genesis = join(dir, 'genesis.db');
    const original = readFileSync(genesis);
    flip(genesis, original.length - 10);
    expect(await openCode(path)).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH', details: { file: 'genesis.db' } });
    expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path), { genesis: 'header' }))).toBeNull(); // header mode: size and header only
    writeFileSync(genesis, original.subarray(0, original.length - 512));
    expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path), { genesis: 'header' }))).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH' });
  });

  it('ok: bytes past the head in the last segment (a frame not committed) pass: the head frame is found by hopping', async () => {
    const { path, dir, segments } = await rotated();
    const last = join(dir, segments.at(-1)!);
    writeFileSync(last, Buffer.concat([readFileSync(last), Buffer.alloc(40, 7)]));
    expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path)))).toBeNull();
  });

  it('err: a re-checksummed last entry of an earlier segment is JOURNAL_CHAIN_BROKEN at the next segment\'s first entry', async () => {
    const { path, dir, segments } = await rotated();
    const file = join(dir, segments[0]!);
    const bytes = readFileSync(file);
    let offset = 40;
    while (offset + 16 + bytes.readUInt32BE(offset) < bytes.length) offset += 16 + bytes.readUInt32BE(offset);
    const at = bytes.lastIndexOf(Buffer.from('x'.repeat(60)));
    bytes[at] = 'y'.charCodeAt(0);
    bytes.writeUInt32BE(crc32(bytes.subarray(offset + 16), crc32(bytes.subarray(offset, offset + 12))), offset + 12);
    writeFileSync(file, bytes);
    const firstOfNext = Number(segments[1]!.slice(0, 20));
    expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path)))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: firstOfNext } });
  });

  it('ok: frames in the middle of a segment are not read at open (bounded cost); readers refuse them when they get there', async () => {
    const { path, dir, segments } = await rotated(1024);
    const file = join(dir, segments[0]!);
    const bytes = readFileSync(file);
    const second = 40 + 16 + bytes.readUInt32BE(40);
    expect(second + 16 + bytes.readUInt32BE(second)).toBeLessThan(bytes.length); // the second of at least three frames
    flip(file, second + 20);
    expect(codeOf(() => checkJournalShape(dir, readCommittedHead(path)))).toBeNull();
    expect(codeOf(() => [...openJournal(dir, readCommittedHead(path)).entries()])).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH', details: { file: segments[0], offset: second } });
  });
});
