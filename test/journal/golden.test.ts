import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sha256, toHex } from '../../src/journal/bytes.js';
import { decodeHead } from '../../src/journal/head.js';
import { readManifest } from '../../src/journal/journal-reader.js';
import { openJournal } from '../../src/journal/journal.js';
import { positionOf } from '../../src/journal/position.js';
import { GOLDEN_DIR, buildGoldenJournal } from './golden.js';

const dir = fileURLToPath(GOLDEN_DIR);

if (process.env.CHANGETRAIL_WRITE_GOLDEN === '1') {
  const golden = buildGoldenJournal();
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(golden.files)) writeFileSync(join(dir, name), bytes);
  writeFileSync(join(dir, 'expected.json'), JSON.stringify(golden.expected, null, 2) + '\n');
}

describe('golden journal vector (journal/vectors/basic)', () => {
  const golden = buildGoldenJournal();
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));

  it('ok: the encoders reproduce every committed file byte for byte', () => {
    for (const [name, bytes] of Object.entries(golden.files)) {
      expect(toHex(new Uint8Array(readFileSync(join(dir, name)))), name).toBe(toHex(bytes));
    }
    expect(golden.expected).toEqual(expected);
  });

  it('ok: the reader decodes the committed files to expected.json', () => {
    const identity = readManifest(dir)!;
    expect(toHex(identity.rootHash)).toBe(expected.rootHash);
    expect(toHex(identity.manifest.journalId)).toBe(expected.manifest.journalId);
    const head = decodeHead(new Uint8Array(readFileSync(join(dir, 'head'))), 'head');
    expect({ journalId: toHex(head.journalId), seq: head.seq, hash: toHex(head.hash) }).toEqual(expected.head);
    const entries = [...openJournal(dir, positionOf(head.journalId, head.seq, head.hash)).entries()];
    expect(entries.map((e) => ({
      seq: e.seq, kind: e.kind, time: e.time, epoch: e.epoch, actor: e.actor, message: e.message, meta: e.meta,
      prevHash: toHex(e.prevHash), tables: e.tables, changeset: toHex(e.changeset), hash: toHex(e.hash),
    }))).toEqual(expected.entries);
  });

  it('ok: stability hash over the vector files (if this changes, the format changed: bump versions)', () => {
    const names = ['manifest', '00000000000000000001.seg', 'head'];
    expect(toHex(sha256(...names.map((name) => golden.files[name]!)))).toBe('ad4f998f3909624ac560fc7063d41ea67694ad98a981bc6e1dfca3db87cd3dbf');
  });
});
