/**
 * The golden conformance vector: a small journal built from fixed inputs with the pure encoders. The files
 * under journal/vectors/basic/ are committed; tests check that decoding them gives expected.json and that
 * encoding expected.json gives the same bytes. Regenerate only for a deliberate, versioned format change:
 * `CHANGETRAIL_WRITE_GOLDEN=1 npx vitest run test/journal/golden.test.ts`.
 */
import { encodeEntryBody, hashEntryBody, type EntryBody } from '../../src/journal/entry.js';
import { encodeFrame } from '../../src/journal/frame.js';
import { encodeHead } from '../../src/journal/head.js';
import { chainRootHash, encodeManifest } from '../../src/journal/manifest.js';
import { encodeSegmentHeader } from '../../src/journal/segment.js';
import { toHex, fromHex } from '../../src/journal/bytes.js';

export const GOLDEN_DIR = new URL('../../journal/vectors/basic/', import.meta.url);

const JOURNAL_ID = fromHex('00112233445566778899aabbccddeeff');
const GENESIS_SHA256 = fromHex('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
// Real changesets captured by node:sqlite for `t(id INTEGER PRIMARY KEY, name TEXT)`:
// entry 1 inserts (1,'alice'); entry 2 updates it to 'alicia' and inserts (2,'bob').
const CHANGESET_1 = fromHex('54020100740012000100000000000000010305616c696365');
const CHANGESET_2 = fromHex('54020100740017000100000000000000010305616c696365000306616c6963696112000100000000000000020303626f62');

export interface GoldenJournal {
  files: Record<string, Uint8Array>;
  expected: unknown;
}

export function buildGoldenJournal(): GoldenJournal {
  const manifest = encodeManifest({ journalId: JOURNAL_ID, createdAtMs: 1_767_225_600_000, genesisSha256: GENESIS_SHA256, genesisSize: 0 });
  const bodies: EntryBody[] = [];
  let prevHash = chainRootHash(manifest);
  const frames: Uint8Array[] = [];
  const hashes: string[] = [];
  const specs = [
    { kind: 'write' as const, changeset: CHANGESET_1, actor: 'alice@host', message: 'add alice', meta: { ticket: 'T-1', n: 1 } },
    { kind: 'write' as const, changeset: CHANGESET_2, actor: null, message: null, meta: null },
  ];
  specs.forEach((spec, index) => {
    const body: EntryBody = {
      seq: index + 1, kind: spec.kind, time: 1_767_225_600_000 + index * 1000, epoch: 1, actor: spec.actor, message: spec.message,
      meta: spec.meta, prevHash, tables: [{ table: 't', inserts: 1, updates: index, deletes: 0 }], changeset: spec.changeset,
    };
    const encoded = encodeEntryBody(body);
    bodies.push(body);
    frames.push(encodeFrame(body.seq, encoded));
    prevHash = hashEntryBody(encoded);
    hashes.push(toHex(prevHash));
  });
  const segment = concat([encodeSegmentHeader({ journalId: JOURNAL_ID, firstSeq: 1 }), ...frames]);
  const head = encodeHead({ journalId: JOURNAL_ID, seq: 2, hash: prevHash });
  return {
    files: { manifest, '00000000000000000001.seg': segment, head },
    expected: {
      manifest: { journalId: toHex(JOURNAL_ID), createdAtMs: 1_767_225_600_000, genesisSha256: toHex(GENESIS_SHA256), genesisSize: 0 },
      rootHash: toHex(chainRootHash(manifest)),
      entries: bodies.map((body, i) => ({ ...body, prevHash: toHex(body.prevHash), changeset: toHex(body.changeset), hash: hashes[i] })),
      head: { journalId: toHex(JOURNAL_ID), seq: 2, hash: toHex(prevHash) },
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
