import { describe, expect, it } from 'vitest';
import { ChangetrailError, type ErrorCode } from '../../src/errors.js';
import { checksum, view } from '../../src/journal/bytes.js';
import { decodeEntryBody, encodeEntryBody, type EntryBody } from '../../src/journal/entry.js';
import { FRAME_HEADER_SIZE, MANIFEST_SIZE } from '../../src/journal/format.js';
import { decodeFrame, encodeFrame } from '../../src/journal/frame.js';
import { decodeHead, encodeHead } from '../../src/journal/head.js';
import { decodeManifest, encodeManifest } from '../../src/journal/manifest.js';
import { decodeSegmentHeader, encodeSegmentHeader, formatSegmentName, parseSegmentName } from '../../src/journal/segment.js';

function codeOf(fn: () => unknown): ErrorCode | 'ok' | 'other' {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? error.code : 'other';
  }
}

const body: EntryBody = {
  seq: 7, kind: 'write', time: 1_700_000_000_123, epoch: 3, actor: 'me', message: 'hello', meta: { a: [1, 'x', null], b: { c: true } },
  prevHash: new Uint8Array(32).fill(9), tables: [{ table: 't', inserts: 1, updates: 2, deletes: 3 }], changeset: new Uint8Array([0x54, 1, 2, 3]),
};
const manifest = { journalId: new Uint8Array(16).fill(1), createdAtMs: 5, genesisSha256: new Uint8Array(32).fill(2), genesisSize: 4096 };

describe('entry body', () => {
  it('ok: round trip', () => {
    const decoded = decodeEntryBody(encodeEntryBody(body), 'f', 0, 7);
    expect(decoded).toEqual(body);
  });

  it('ok: optional fields round trip and equal bodies encode to equal bytes', () => {
    const schema = { ...body, kind: 'schema' as const, sql: 'ALTER TABLE t ADD COLUMN x' };
    expect(decodeEntryBody(encodeEntryBody(schema), 'f', 0)).toEqual(schema);
    const undo = { ...body, undoes: body.seq - 1 };
    expect(decodeEntryBody(encodeEntryBody(undo), 'f', 0)).toEqual(undo);
    expect(encodeEntryBody({ ...schema })).toEqual(encodeEntryBody(schema));
  });

  it('ok: a meta key named __proto__ stays a plain key', () => {
    const meta = JSON.parse('{"__proto__": {"polluted": 1}}');
    const decoded = decodeEntryBody(encodeEntryBody({ ...body, meta }), 'f', 0);
    expect(Object.keys(decoded.meta!)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('err: bytes that are not msgpack, or the wrong shape, are JOURNAL_MALFORMED', () => {
    expect(codeOf(() => decodeEntryBody(new Uint8Array([0xc1]), 'f', 0))).toBe('JOURNAL_MALFORMED');
    expect(codeOf(() => decodeEntryBody(new Uint8Array([0x93, 1, 2, 3]), 'f', 0))).toBe('JOURNAL_MALFORMED');
    const wrongVersion = encodeEntryBody(body);
    wrongVersion[2] = 9; // the value of key "v"
    expect(codeOf(() => decodeEntryBody(wrongVersion, 'f', 0))).toBe('JOURNAL_MALFORMED');
  });
});

describe('frame', () => {
  const frame = encodeFrame(7, encodeEntryBody(body));

  it('ok: round trip', () => {
    const decoded = decodeFrame(frame, 'f', 0);
    expect(decoded.seq).toBe(7);
    expect(decoded.size).toBe(frame.byteLength);
    expect(decodeEntryBody(decoded.body, 'f', 0)).toEqual(body);
  });

  it('err: every truncation is a torn tail', () => {
    for (let length = 0; length < frame.byteLength; length++) {
      expect(codeOf(() => decodeFrame(frame.subarray(0, length), 'f', 0)), `length ${length}`).toBe('JOURNAL_TORN_TAIL');
    }
  });

  it('err: every single-byte flip outside the size field is a checksum mismatch', () => {
    for (let i = 4; i < frame.byteLength; i++) {
      const copy = frame.slice();
      copy[i]! ^= 0x5a;
      expect(codeOf(() => decodeFrame(copy, 'f', 0)), `byte ${i}`).toBe('JOURNAL_CHECKSUM_MISMATCH');
    }
  });

  it('err: a flipped size field never decodes', () => {
    for (let i = 0; i < 4; i++) {
      const copy = frame.slice();
      copy[i]! ^= 0x01;
      expect(['JOURNAL_CHECKSUM_MISMATCH', 'JOURNAL_TORN_TAIL', 'JOURNAL_MALFORMED']).toContain(codeOf(() => decodeFrame(copy, 'f', 0)));
    }
  });

  it('err: a zero or oversized body size is malformed', () => {
    const copy = frame.slice();
    view(copy).setUint32(0, 0);
    expect(codeOf(() => decodeFrame(copy, 'f', 0))).toBe('JOURNAL_MALFORMED');
    view(copy).setUint32(0, 0xffffffff);
    expect(codeOf(() => decodeFrame(copy, 'f', 0))).toBe('JOURNAL_MALFORMED');
    expect(FRAME_HEADER_SIZE).toBe(16);
  });
});

describe('checksum', () => {
  it('ok: CRC-32 matches the published check value of "123456789"', () => {
    expect(checksum(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});

describe('manifest, segment header, head', () => {
  it('ok: round trips', () => {
    expect(decodeManifest(encodeManifest(manifest), 'm')).toEqual(manifest);
    expect(decodeSegmentHeader(encodeSegmentHeader({ journalId: manifest.journalId, firstSeq: 42 }), 's')).toEqual({ journalId: manifest.journalId, firstSeq: 42 });
    const head = { journalId: manifest.journalId, seq: 9, hash: new Uint8Array(32).fill(3) };
    expect(decodeHead(encodeHead(head), 'h')).toEqual(head);
  });

  it('err: every byte flip of a fixed header is detected', () => {
    const encoded = [encodeManifest(manifest), encodeSegmentHeader({ journalId: manifest.journalId, firstSeq: 1 }), encodeHead({ journalId: manifest.journalId, seq: 1, hash: new Uint8Array(32) })];
    const decoders = [(b: Uint8Array) => decodeManifest(b, 'm'), (b: Uint8Array) => decodeSegmentHeader(b, 's'), (b: Uint8Array) => decodeHead(b, 'h')];
    encoded.forEach((bytes, which) => {
      for (let i = 0; i < bytes.byteLength; i++) {
        const copy = bytes.slice();
        copy[i]! ^= 0x10;
        expect(['JOURNAL_CHECKSUM_MISMATCH', 'JOURNAL_MALFORMED', 'JOURNAL_VERSION_UNSUPPORTED'], `${which}:${i}`).toContain(codeOf(() => decoders[which]!(copy)));
      }
    });
  });

  it('err: a newer version is JOURNAL_VERSION_UNSUPPORTED (checked before the checksum)', () => {
    const bytes = encodeManifest(manifest);
    view(bytes).setUint16(4, 2);
    view(bytes).setUint32(76, checksum(bytes.subarray(0, 76)));
    expect(codeOf(() => decodeManifest(bytes, 'm'))).toBe('JOURNAL_VERSION_UNSUPPORTED');
    expect(codeOf(() => decodeManifest(bytes.subarray(0, MANIFEST_SIZE - 1), 'm'))).toBe('JOURNAL_MALFORMED');
  });

  it('ok: segment names sort and parse', () => {
    expect(formatSegmentName(1)).toBe('00000000000000000001.seg');
    expect(parseSegmentName(formatSegmentName(123456789))).toBe(123456789);
    expect(parseSegmentName('00000000000000000001.seg.tmp')).toBeNull();
    expect(parseSegmentName('head')).toBeNull();
  });
});
