/**
 * The head-anchored reader over real journals written by real trails: ranged reads are proven against the
 * committed head, the tail cursor resumes from a byte location and follows the head across segment
 * rotation, and readCommittedHead reads without changing the database.
 */
import { readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { CHECKPOINT_INTERVAL, CommittedHeadReader, openJournal, readCommittedHead, readHeadMarkerPosition } from '../../src/journal/journal.js';
import { crc32 } from 'node:zlib';
import { encodeEntryBody, hashEntryBody } from '../../src/journal/entry.js';
import { encodeFrame } from '../../src/journal/frame.js';
import { encodeHead } from '../../src/journal/head.js';
import { chainRootHash, encodeManifest } from '../../src/journal/manifest.js';
import { encodeSegmentHeader } from '../../src/journal/segment.js';
import { formatPosition, parsePosition, positionOf, positionsEqual } from '../../src/journal/position.js';
import { forgeEntry } from '../helpers/forge.js';
import { tempDir, tempTrail } from '../helpers/db.js';

async function trailWith(count: number, options = {}) {
  const made = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', options);
  for (let i = 1; i <= count; i++) await made.trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, 'v${i}')`), { message: `m${i}` });
  return made;
}

function codeOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error instanceof ChangetrailError ? { code: error.code, details: error.details } : error;
  }
  return null;
}

async function codeOfAsync(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => null, (error: unknown) => (error instanceof ChangetrailError ? { code: error.code, details: error.details } : error));
}

describe('Position', () => {
  it('ok: formats, parses and compares one way', () => {
    const p = positionOf('00112233445566778899aabbccddeeff', 7, 'ab'.repeat(32));
    expect(formatPosition(p)).toBe(`00112233445566778899aabbccddeeff/7/${'ab'.repeat(32)}`);
    expect(positionsEqual(parsePosition(formatPosition(p)), p)).toBe(true);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('err: malformed parts are TypeError', () => {
    expect(() => positionOf('xyz', 1, 'ab'.repeat(32))).toThrow(TypeError);
    expect(() => parsePosition('1/2')).toThrow(TypeError);
    expect(() => positionOf('00'.repeat(16), -1, 'ab'.repeat(32))).toThrow(TypeError);
  });
});

describe('openJournal', () => {
  it('ok: entries, entry and positionAt agree with status and the chain', async () => {
    const { trail, path } = await trailWith(4);
    const status = await trail.status();
    await trail.close();
    const head = readCommittedHead(path);
    expect(positionsEqual(head, status.head)).toBe(true);
    expect(status.head).toMatchObject({ seq: status.headSeq, hash: status.headHash, journalId: status.journalId });
    const journal = openJournal(`${path}.changes`, head);
    const all = [...journal.entries()];
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect([...journal.entries({ from: 2, to: 3 })].map((e) => e.message)).toEqual(['m2', 'm3']);
    expect(journal.entry(3).message).toBe('m3');
    expect(journal.positionAt(2).hash).toBe(Buffer.from(all[1]!.hash).toString('hex'));
    expect(journal.positionAt(0)).toEqual(journal.root);
    expect(codeOf(() => journal.entry(5))).toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: 5, headSeq: 4 } });
  });

  it('err: a ranged read of an entry whose CRC was recomputed is JOURNAL_CHAIN_BROKEN (issue 8 item 6)', async () => {
    const { trail, path } = await trailWith(3);
    await trail.close();
    forgeEntry(path, 2, (raw) => { raw.message = 'X2'; }, { rechain: false }); // same size: offsets stay
    const reopened = await openTrail(path);
    try {
      const read = async () => { for await (const _ of reopened.entries({ from: 2, to: 2 })) { /* read */ } };
      expect(await codeOfAsync(read())).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 3 } });
      expect(await codeOfAsync(reopened.undo(2))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN' });
      expect((await reopened.status()).headSeq).toBe(3);
    } finally {
      await reopened.close();
    }
    const db = new DatabaseSync(path, { readOnly: true });
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3 });
    db.close();
  });

  it('err: a re-chained forgery is refused at the committed head', async () => {
    const { trail, path } = await trailWith(3);
    const status = await trail.status();
    await trail.close();
    const saved = readFileSync(path);
    forgeEntry(path, 1, (raw) => { raw.message = 'forged'; });
    writeFileSync(path, saved); // the database still commits the original chain
    const journal = openJournal(`${path}.changes`, status.head);
    expect(codeOf(() => journal.entry(1))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 3 } });
    expect(codeOf(() => [...journal.entries({ from: 3 })])).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 3 } });
  });

  it('err: another journal\'s head is JOURNAL_MISMATCH', async () => {
    const { trail, path } = await trailWith(1);
    await trail.close();
    const other = positionOf('ff'.repeat(16), 1, '00'.repeat(32));
    expect(codeOf(() => openJournal(`${path}.changes`, other))).toMatchObject({ code: 'JOURNAL_MISMATCH' });
    expect(codeOf(() => openJournal(tempDir(), other))).toMatchObject({ code: 'JOURNAL_MISMATCH', details: { reason: 'journal directory missing' } });
  });
});

describe('readCommittedHead', () => {
  it('ok: reads a WAL database without changing its journal mode or its bytes', async () => {
    const { trail, path } = await trailWith(2, { journalMode: 'wal' });
    await trail.close();
    const before = readFileSync(path);
    const head = readCommittedHead(path);
    expect(head.seq).toBe(2);
    expect(readFileSync(path).equals(before)).toBe(true);
    const db = new DatabaseSync(path, { readOnly: true });
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
  });

  it('err: a database without a head row is JOURNAL_MISMATCH', () => {
    const path = join(tempDir(), 'plain.db');
    new DatabaseSync(path).close();
    expect(codeOf(() => readCommittedHead(path))).toMatchObject({ code: 'JOURNAL_MISMATCH' });
  });
});

describe('CommittedHeadReader', () => {
  it('ok: one connection follows the head; a database restored over the path is read afresh', async () => {
    const { trail, path } = await trailWith(2);
    const reader = new CommittedHeadReader(path);
    try {
      expect(reader.read(1000)!.seq).toBe(2);
      const older = readFileSync(path);
      await trail.write((db) => db.exec(`INSERT INTO t VALUES (3, 'v3')`));
      expect(reader.read(1000)!.seq).toBe(3);
      await trail.close();
      const copy = `${path}.older`;
      writeFileSync(copy, older);
      renameSync(copy, path); // another file at the path (a restore)
      expect(reader.read(1000)!.seq).toBe(2);
    } finally {
      reader.close();
    }
  });

  it('ok: without waiting, a writer holding the database gives null (busy), and the head once it is released', async () => {
    const { trail, path } = await trailWith(1);
    await trail.close();
    const reader = new CommittedHeadReader(path);
    const writer = new DatabaseSync(path);
    try {
      writer.exec('BEGIN EXCLUSIVE');
      expect(reader.read(0)).toBeNull();
      expect(codeOf(() => reader.read(50))).toMatchObject({ code: 'SQLITE_ERROR' });
      writer.exec('ROLLBACK');
      expect(reader.read(0)!.seq).toBe(1);
    } finally {
      writer.close();
      reader.close();
    }
  });
});

describe('JournalCursor', () => {
  it('ok: resumes from a byte location and follows the head across segment rotation', async () => {
    const { trail, path } = await trailWith(3, { segmentBytesTarget: 512 });
    const dir = `${path}.changes`;
    const journal = openJournal(dir, readHeadMarkerPosition(dir)!);
    const cursor = journal.cursorAfter(journal.root);
    expect([...cursor.read()].map((e) => e.seq)).toEqual([1, 2, 3]);
    const saved = { position: cursor.position, location: cursor.location };
    for (let i = 4; i <= 12; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, '${'x'.repeat(100)}')`));
    await trail.close();
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(1);
    const marker = readHeadMarkerPosition(dir)!;
    cursor.advance(marker);
    expect([...cursor.read()].map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(positionsEqual(cursor.position, marker)).toBe(true);
    const resumed = openJournal(dir, marker).cursorAfter(saved.position, saved.location!);
    expect([...resumed.read()].map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const misled = openJournal(dir, marker).cursorAfter(saved.position, { segment: 1, offset: 41 });
    expect([...misled.read()].map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12]); // a wrong hint is ignored
    cursor.advance(saved.position); // an older head is ignored
    expect(cursor.head.seq).toBe(12);
  });

  it('err: a torn tail below the head is JOURNAL_TORN_TAIL (wait); a flipped byte is JOURNAL_CHECKSUM_MISMATCH (stop)', async () => {
    const { trail, path } = await trailWith(3);
    await trail.close();
    const dir = `${path}.changes`;
    const segment = join(dir, '00000000000000000001.seg');
    const original = readFileSync(segment);
    const marker = readHeadMarkerPosition(dir)!;
    const cursor = openJournal(dir, marker).cursorAfter(openJournal(dir, marker).positionAt(1));
    truncateSync(segment, statSync(segment).size - 5);
    expect(codeOf(() => [...cursor.read()])).toMatchObject({ code: 'JOURNAL_TORN_TAIL', details: { seq: 3 } });
    expect(cursor.position.seq).toBe(1);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 1;
    writeFileSync(segment, flipped);
    expect(codeOf(() => [...cursor.read()])).toMatchObject({ code: 'JOURNAL_CHECKSUM_MISMATCH', details: { seq: 3 } });
    writeFileSync(segment, original);
    expect([...cursor.read()].map((e) => e.seq)).toEqual([2, 3]);
  });

  it('err: resuming from a position of another history is POSITION_MISMATCH', async () => {
    const { trail, path } = await trailWith(2);
    await trail.close();
    const dir = `${path}.changes`;
    const marker = readHeadMarkerPosition(dir)!;
    const wrong = positionOf(marker.journalId, 1, '00'.repeat(32));
    const cursor = openJournal(dir, marker).cursorAfter(wrong);
    expect(codeOf(() => [...cursor.read()])).toMatchObject({ code: 'POSITION_MISMATCH', details: { seq: 1 } });
    expect(codeOf(() => openJournal(dir, marker).cursorAfter(positionOf(marker.journalId, 2, '00'.repeat(32))))).toMatchObject({ code: 'POSITION_MISMATCH' });
  });
});

describe('checkpoints', () => {
  /** A journal of `count` entries built with the encoders (no database): head from the marker. */
  function built(count: number): string {
    const dir = tempDir('ct-built-');
    const journalId = new Uint8Array(16).fill(7);
    writeFileSync(join(dir, 'genesis.db'), new Uint8Array(0));
    const manifest = encodeManifest({ journalId, createdAtMs: 1, genesisSha256: new Uint8Array(32), genesisSize: 0 });
    writeFileSync(join(dir, 'manifest'), manifest);
    let prevHash = chainRootHash(manifest);
    const parts = [encodeSegmentHeader({ journalId, firstSeq: 1 })];
    for (let seq = 1; seq <= count; seq++) {
      const body = encodeEntryBody({
        seq, kind: 'write', time: 1_767_225_600_000 + seq, epoch: 1, actor: null, message: `m${seq}`, meta: null,
        prevHash, tables: [], changeset: new Uint8Array(0),
      });
      parts.push(encodeFrame(seq, body));
      prevHash = hashEntryBody(body);
    }
    writeFileSync(join(dir, '00000000000000000001.seg'), Buffer.concat(parts));
    writeFileSync(join(dir, 'head'), encodeHead({ journalId, seq: count, hash: prevHash }));
    return dir;
  }

  it('ok/err: reads after the first stop at a proven checkpoint, and still refuse a re-checksummed entry', () => {
    const dir = built(2 * CHECKPOINT_INTERVAL + 50);
    const journal = openJournal(dir, readHeadMarkerPosition(dir)!);
    expect(journal.entry(1).message).toBe('m1');
    expect(journal.entry(1500).message).toBe('m1500');
    // Rewrite entry 1500's message (same size) and its CRC: the chain to checkpoint 2048 breaks.
    const segment = join(dir, '00000000000000000001.seg');
    const bytes = readFileSync(segment);
    const at = bytes.indexOf(Buffer.from('m1500'));
    bytes.write('m1599', at);
    let offset = 40;
    while (bytes.readBigUInt64BE(offset + 4) !== 1500n) offset += 16 + bytes.readUInt32BE(offset);
    bytes.writeUInt32BE(crc32(bytes.subarray(offset + 16, offset + 16 + bytes.readUInt32BE(offset)), crc32(bytes.subarray(offset, offset + 12))), offset + 12);
    writeFileSync(segment, bytes);
    expect(codeOf(() => journal.entry(1500))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 1501 } });
    expect(codeOf(() => openJournal(dir, readHeadMarkerPosition(dir)!).entry(1500))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN' });
    expect(journal.entry(2060).message).toBe('m2060');
  });

  /** Rewrites entry `seq`'s message (same size) and its CRC, without re-chaining: the chain breaks at seq + 1. */
  function rechecksum(dir: string, seq: number): void {
    const segment = join(dir, '00000000000000000001.seg');
    const bytes = readFileSync(segment);
    let offset = 40;
    while (bytes.readBigUInt64BE(offset + 4) !== BigInt(seq)) offset += 16 + bytes.readUInt32BE(offset);
    const size = bytes.readUInt32BE(offset);
    const at = bytes.indexOf(Buffer.from(`m${seq}`), offset + 16);
    bytes.write('X', at);
    bytes.writeUInt32BE(crc32(bytes.subarray(offset + 16, offset + 16 + size), crc32(bytes.subarray(offset, offset + 12))), offset + 12);
    writeFileSync(segment, bytes);
  }

  it('ok: small windows (many windows, proving passes, checkpoints) yield exactly the entries of one large window', () => {
    const dir = built(2600);
    const head = readHeadMarkerPosition(dir)!;
    const expected = [...openJournal(dir, head).entries()].map((entry) => entry.message);
    expect(expected).toHaveLength(2600);
    for (const limits of [{ entryCount: 100, bytesMax: 1 << 30 }, { entryCount: 1 << 20, bytesMax: 5000 }, { entryCount: 1, bytesMax: 1 }]) {
      const journal = openJournal(dir, head, limits);
      expect([...journal.entries()].map((entry) => entry.message)).toEqual(expected);
      expect([...journal.entries({ from: 777, to: 1999 })].map((entry) => entry.message)).toEqual(expected.slice(776, 1999));
      const cursor = journal.cursorAfter(journal.positionAt(1234));
      expect([...cursor.read()].map((entry) => entry.message)).toEqual(expected.slice(1234));
      expect(cursor.position).toEqual(head);
    }
  });

  it('err: a re-checksummed entry far past the first window stops the read before it yields anything', () => {
    const dir = built(2600);
    const head = readHeadMarkerPosition(dir)!;
    rechecksum(dir, 2400);
    for (const limits of [{ entryCount: 100, bytesMax: 1 << 30 }, { entryCount: 1 << 20, bytesMax: 1 << 30 }]) {
      const journal = openJournal(dir, head, limits);
      const yielded: number[] = [];
      const read = (entries: Iterable<{ seq: number }>) => () => { for (const entry of entries) yielded.push(entry.seq); };
      expect(codeOf(read(journal.entries()))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 2401 } });
      expect(codeOf(read(journal.cursorAfter(journal.root).read()))).toMatchObject({ code: 'JOURNAL_CHAIN_BROKEN', details: { seq: 2401 } });
      expect(yielded).toEqual([]);
    }
  });
});
