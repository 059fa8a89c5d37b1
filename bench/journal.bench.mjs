// Head-anchored reading benchmark: what proving every entry against the committed head costs.
//
// A journal of N entries (one segment, ~200-byte bodies like a 1-row write) is built with the encoders.
// Baseline: one unanchored pass (frames CRC-checked and bodies decoded, as the reader before anchoring
// did). Anchored: journal.entries() (two passes per window), entry(1) on a fresh journal (walks to the
// head once), entry(2) after that (stops at the next checkpoint), entry(head).
//
//   npm run build && npx node bench/journal.bench.mjs [entries]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEntryBody, decodeEntryBody, hashEntryBody } from '../dist/journal/entry.js';
import { encodeFrame } from '../dist/journal/frame.js';
import { encodeHead } from '../dist/journal/head.js';
import { chainRootHash, encodeManifest } from '../dist/journal/manifest.js';
import { encodeSegmentHeader } from '../dist/journal/segment.js';
import { SegmentFile } from '../dist/journal/segment-file.js';
import { openJournal, readHeadMarkerPosition } from '../dist/journal/journal.js';

const COUNT = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'changetrail-journal-bench-'));
try {
  build(dir, COUNT);
  const head = readHeadMarkerPosition(dir);
  console.log(`# head-anchored reading: ${COUNT} entries, Node ${process.version}\n`);
  console.log('| case | baseline ms | changetrail ms | ratio |');
  console.log('|---|---:|---:|---:|');
  const baseline = best(() => { for (const frame of openSegment(dir).frames()) decodeEntryBody(frame.body, 'seg', frame.offset, frame.seq); });
  row('read all entries', baseline, best(() => { for (const _ of openJournal(dir, head).entries()) { /* read */ } }));
  const one = best(() => { const f = openSegment(dir); for (const frame of f.frames()) { decodeEntryBody(frame.body, 'seg', frame.offset, frame.seq); break; } });
  row('entry(1), fresh journal (walks to the head)', one, best(() => openJournal(dir, head).entry(1)));
  const warm = openJournal(dir, head);
  warm.entry(1);
  row('entry(2) after entry(1) (next checkpoint)', one, best(() => warm.entry(2)));
  row(`entry(${COUNT}) (the head)`, one, best(() => openJournal(dir, head).entry(COUNT)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function openSegment(path) {
  return SegmentFile.open(path, 1, false);
}

function row(name, base, ours) {
  console.log(`| ${name} | ${base.toFixed(2)} | ${ours.toFixed(2)} | ${(ours / base).toFixed(2)} |`);
}

function best(fn, runs = 5) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    min = Math.min(min, performance.now() - start);
  }
  return min;
}

function build(path, count) {
  const journalId = new Uint8Array(16).fill(7);
  writeFileSync(join(path, 'genesis.db'), new Uint8Array(0));
  const manifest = encodeManifest({ journalId, createdAtMs: 1, genesisSha256: new Uint8Array(32), genesisSize: 0 });
  writeFileSync(join(path, 'manifest'), manifest);
  let prevHash = chainRootHash(manifest);
  const parts = [encodeSegmentHeader({ journalId, firstSeq: 1 })];
  const changeset = new Uint8Array(60).fill(1);
  for (let seq = 1; seq <= count; seq++) {
    const body = encodeEntryBody({
      seq, kind: 'write', time: 1_767_225_600_000 + seq, epoch: 1, actor: 'bench@host', message: `write ${seq}`, meta: { n: seq },
      prevHash, tables: [{ table: 't', inserts: 1, updates: 0, deletes: 0 }], changeset,
    });
    parts.push(encodeFrame(seq, body));
    prevHash = hashEntryBody(body);
  }
  writeFileSync(join(path, '00000000000000000001.seg'), Buffer.concat(parts));
  writeFileSync(join(path, 'head'), encodeHead({ journalId, seq: count, hash: prevHash }));
}
