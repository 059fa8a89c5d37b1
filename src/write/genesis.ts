/**
 * Starting a journal for a database: the genesis snapshot (the state that entry 1 applies to), the
 * manifest binding the journal to the database, the first segment, and the head row. Adoption of a
 * database that already holds data is non-destructive: the user's tables are untouched.
 *
 * Runs under the admission lock and inside the caller's `BEGIN IMMEDIATE`, so no admitted writer can
 * commit between the snapshot and the head row. The snapshot is taken by a second, read-only connection
 * (`VACUUM INTO`): SQLite's RESERVED lock still admits readers, and both connections live in the same
 * copy of SQLite, whose lock bookkeeping survives the second connection's close (howtocorrupt §2.3).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { fsyncDirectory, fsyncFile, io, journalFileMode, listDirectory, writeFileDurably } from '../journal/files.js';
import { GENESIS_FILE, HEAD_FILE, MANIFEST_FILE, SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { listSegments, readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import { chainRootHash, encodeManifest } from '../journal/manifest.js';
import { digestSnapshotFile } from '../apply/snapshot-digest.js';
import { SegmentFile } from '../journal/segment-file.js';
import { crashpoint } from './crashpoint.js';
import { CREATE_HEAD_TABLE, HEAD_TABLE, insertHead, type HeadRow } from './head-row.js';

export interface Genesis {
  identity: JournalIdentity;
  head: HeadRow;
}

/** Creates journal files and the head row. The caller commits, then publishes the head marker. */
export function startJournal(db: DatabaseSync, databasePath: string, dir: string, holder: string, changeCounter: number | null): Genesis {
  clearInterruptedStart(dir);
  const genesis = snapshotDatabase(databasePath, dir, GENESIS_FILE);
  crashpoint('after-genesis');
  const journalId = new Uint8Array(randomBytes(16));
  const manifestBytes = encodeManifest({ journalId, createdAtMs: Date.now(), genesisSha256: genesis.sha256, genesisSize: genesis.size });
  writeFileDurably(dir, MANIFEST_FILE, manifestBytes);
  crashpoint('after-manifest');
  SegmentFile.create(dir, { journalId, firstSeq: 1 }).close();
  const head: HeadRow = {
    journalId: toHex(journalId), seq: 0, hash: chainRootHash(manifestBytes), segment: 1, tailOffset: 0,
    segmentSize: SEGMENT_HEADER_SIZE, epoch: 1, holder, changeCounter,
  };
  db.exec(CREATE_HEAD_TABLE);
  insertHead(db, head);
  const identity = readManifest(dir);
  if (identity === null) throw new Error('manifest vanished after it was written');
  return { identity, head };
}

/**
 * A journal directory without a head row in the database is either an interrupted start (no entries
 * yet: safe to clear) or a journal of another history (entries present: refuse, never overwrite).
 */
function clearInterruptedStart(dir: string): void {
  for (const firstSeq of listSegments(dir)) {
    const segment = SegmentFile.open(dir, firstSeq, false);
    const size = segment?.size() ?? 0;
    segment?.close();
    if (size > SEGMENT_HEADER_SIZE || firstSeq !== 1) {
      const identity = safeManifest(dir);
      throw new ChangetrailError('JOURNAL_MISMATCH',
        `start journal: ${dir} already holds entries, but the database has no changetrail head. ` +
        'The database was replaced, or restored from before changetrail was enabled. Move the journal directory aside to start a new history.',
        { databaseJournalId: null, journalJournalId: identity, reason: 'journal has entries, database has no head' });
    }
  }
  for (const name of listDirectory(dir)) {
    if (name === MANIFEST_FILE || name === GENESIS_FILE || name === HEAD_FILE || name.endsWith('.seg') || name.endsWith('.tmp')) {
      io('remove', join(dir, name), () => rmSync(join(dir, name), { force: true }));
    }
  }
}

function safeManifest(dir: string): string | null {
  try {
    const identity = readManifest(dir);
    return identity === null ? null : toHex(identity.manifest.journalId);
  } catch {
    return null;
  }
}

export interface Snapshot {
  file: string;
  sha256: Uint8Array;
  size: number;
}

/** Writes a consistent copy of the database into `dir/name` (temp, fsync, rename) and digests it. */
export function snapshotDatabase(databasePath: string, dir: string, name: string): Snapshot {
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const target = join(dir, name);
  const reader = new DatabaseSync(databasePath, { readOnly: true });
  try {
    reader.prepare('VACUUM INTO ?').run(temp);
  } catch (cause) {
    rmSync(temp, { force: true });
    throw new ChangetrailError('IO_ERROR', `snapshot database into ${target}: ${(cause as Error).message}`, { operation: 'snapshot', path: target }, { cause });
  } finally {
    reader.close();
  }
  withoutChangetrailTables(temp);
  io('snapshot', target, () => {
    chmodSync(temp, journalFileMode(dir)); // SQLite creates it 0644: no wider than the database (issue 9 §2.3)
    fsyncFile(temp);
    renameSync(temp, target);
  });
  fsyncDirectory(dir);
  return { file: name, ...digestSnapshotFile(target) };
}

/**
 * Snapshots hold user data only, like the genesis snapshot: a replica restored from one must not carry the
 * source's head row (which names the source's journal). The copy is a new file, never the live database.
 */
function withoutChangetrailTables(path: string): void {
  const copy = new DatabaseSync(path);
  try {
    // No VACUUM: the table's one freed page is not worth rewriting a large snapshot.
    copy.exec(`DROP TABLE IF EXISTS ${HEAD_TABLE}`);
  } finally {
    copy.close();
  }
}
