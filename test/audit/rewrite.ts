/**
 * A consistent rewrite of a journal's history, as an attacker with write access to the database and its
 * journal could make it: one entry changed, every later entry re-chained and re-hashed, the frames
 * re-checksummed, the head row and head marker updated to match. The chain alone cannot tell.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { encodeEntryBody, hashEntryBody, type EntryBody } from '../../src/journal/entry.js';
import { encodeFrame } from '../../src/journal/frame.js';
import { encodeHead } from '../../src/journal/head.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { encodeSegmentHeader } from '../../src/journal/segment.js';

export function rewriteHistory(databasePath: string, seq: number, change: (body: EntryBody) => EntryBody): void {
  const dir = `${databasePath}.changes`;
  const journal = openJournal(dir, readCommittedHead(databasePath));
  const bodies: EntryBody[] = [...journal.entries()].map(({ hash: _h, file: _f, offset: _o, ...body }) => body as EntryBody);
  let prevHash = journal.identity.rootHash;
  const frames: Uint8Array[] = [encodeSegmentHeader({ journalId: journal.identity.manifest.journalId, firstSeq: 1 })];
  let offset = frames[0]!.byteLength;
  let tailOffset = 0;
  for (const original of bodies) {
    const body = { ...(original.seq === seq ? change(original) : original), prevHash };
    const bytes = encodeEntryBody(body);
    prevHash = hashEntryBody(bytes);
    const frame = encodeFrame(body.seq, bytes);
    tailOffset = offset;
    offset += frame.byteLength;
    frames.push(frame);
  }
  for (const name of readdirSync(dir)) if (name.endsWith('.seg')) rmSync(join(dir, name));
  writeFileSync(join(dir, '00000000000000000001.seg'), Buffer.concat(frames));
  writeFileSync(join(dir, 'head'), encodeHead({ journalId: journal.identity.manifest.journalId, seq: bodies.length, hash: prevHash }));
  // The UPDATE is itself a commit: record the change counter it will leave, as changetrail would.
  const counter = Buffer.from(readFileSync(databasePath).subarray(24, 28)).readUInt32BE(0);
  const db = new DatabaseSync(databasePath);
  db.exec('BEGIN');
  db.prepare('UPDATE _changetrail_head SET hash = ?, segment = 1, tail_offset = ?, segment_size = ?, change_counter = ? WHERE id = 1')
    .run(prevHash, tailOffset, offset, (counter + 1) % 2 ** 32);
  // The outbox's frames name the history being replaced: whoever rewrites the head rewrites them too.
  db.exec('DELETE FROM _changetrail_outbox; COMMIT');
  db.close();
}
