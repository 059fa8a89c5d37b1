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
import { chmodSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { fsyncDirectory, fsyncFile, io, journalFileMode, listDirectory, readSmallFile, writeFileDurably } from '../journal/files.js';
import { GENESIS_FILE, MANIFEST_FILE, SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { listSegments, readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import { chainRootHash, encodeManifest } from '../journal/manifest.js';
import { digestSnapshotFile } from '../apply/snapshot-digest.js';
import { SegmentFile } from '../journal/segment-file.js';
import { crashpoint } from './crashpoint.js';
import { CREATE_HEAD_TABLE, HEAD_TABLE, insertHead, type HeadRow } from './head-row.js';
import { CREATE_OUTBOX_TABLE, OUTBOX_TABLE } from '../journal/outbox.js';

export interface Genesis {
  identity: JournalIdentity;
  head: HeadRow;
}

/** Creates journal files and the head row. The caller commits, then publishes the head marker. */
export function startJournal(db: DatabaseSync, databasePath: string, dir: string, holder: string, changeCounter: number | null): Genesis {
  clearInterruptedStart(dir, databasePath);
  writeStarting(dir, databasePath);
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
  db.exec(CREATE_OUTBOX_TABLE);
  insertHead(db, head);
  const identity = readManifest(dir);
  if (identity === null) throw new Error('manifest vanished after it was written');
  return { identity, head };
}

/**
 * Names the database an unfinished journal start belongs to; written before anything else of a new
 * journal and removed once its head row is committed. Only the database it names may clear what an
 * interrupted start left (journal/FORMAT.md §2).
 */
export const STARTING_FILE = 'starting';

/** Files changetrail creates in a journal directory (and temporary files of its durable writes). */
const CHANGETRAIL_FILE = /^(manifest|head|genesis\.db|snapshot-\d+\.db|\d{20}\.seg|starting)$/;
const CHANGETRAIL_TEMP = /^\.(manifest|head|genesis\.db|snapshot-\d+\.db|starting)\.[0-9a-f]{12}\.tmp$/;
/** Entries of the admission lock (journal/LOCK.md §2): all start with `lock`. */
const LOCK_ENTRY = /^lock/;

/**
 * Where a new journal may start: a directory that is empty (but for the admission lock, taken first),
 * or that holds only what an interrupted start of this very database left, which is cleared. Anything
 * else is refused and nothing is deleted: files changetrail did not create, another database's journal
 * (its manifest without a `starting` file naming this database), a journal with entries.
 */
function clearInterruptedStart(dir: string, databasePath: string): void {
  const names = listDirectory(dir).filter((name) => !LOCK_ENTRY.test(name));
  const foreign = names.filter((name) => !CHANGETRAIL_FILE.test(name) && !CHANGETRAIL_TEMP.test(name));
  if (foreign.length > 0) {
    throw new ChangetrailError('JOURNAL_MISMATCH',
      `start journal: ${dir} holds files changetrail did not create (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', ...' : ''}); ` +
      'a journal starts only in an empty directory or in this database\'s own journal. Give journalDir a directory of its own.',
      { databaseJournalId: null, journalJournalId: safeManifest(dir), reason: 'journal directory is not empty' });
  }
  if (names.length === 0) return;
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
  if (!startingNames(dir, databasePath)) {
    throw new ChangetrailError('JOURNAL_MISMATCH',
      `start journal: ${dir} holds the journal (or an unfinished start) of another database; two databases cannot share a journal directory. ` +
      'Give this database a journalDir of its own.',
      { databaseJournalId: null, journalJournalId: safeManifest(dir), reason: 'journal directory belongs to another database' });
  }
  for (const name of names) io('remove', join(dir, name), () => rmSync(join(dir, name), { force: true }));
  fsyncDirectory(dir);
}

interface StartingRecord {
  database: string;
  dev: string;
  ino: string;
}

function databaseIdentity(databasePath: string): StartingRecord {
  const stat = io('stat', databasePath, () => statSync(databasePath, { bigint: true }));
  return { database: databasePath, dev: String(stat.dev), ino: String(stat.ino) };
}

/** Records that `dir` is being started for this database (before any other journal file exists). */
function writeStarting(dir: string, databasePath: string): void {
  writeFileDurably(dir, STARTING_FILE, new TextEncoder().encode(`${JSON.stringify(databaseIdentity(databasePath))}\n`));
}

/** Whether the `starting` file names this database (by path, or by device and inode). */
function startingNames(dir: string, databasePath: string): boolean {
  const bytes = readSmallFile(join(dir, STARTING_FILE), 4096);
  if (bytes === null) return false;
  let record: Partial<StartingRecord>;
  try {
    record = JSON.parse(new TextDecoder().decode(bytes)) as Partial<StartingRecord>;
  } catch {
    return false;
  }
  const self = databaseIdentity(databasePath);
  return record.database === self.database || (record.dev === self.dev && record.ino === self.ino);
}

/** After the head row is committed the journal is this database's by its journal id: `starting` goes. */
export function finishStart(dir: string): void {
  try {
    rmSync(join(dir, STARTING_FILE), { force: true });
  } catch {
    // Harmless if left: it names this database, whose head row now names the journal.
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
    copy.exec(`DROP TABLE IF EXISTS ${HEAD_TABLE}; DROP TABLE IF EXISTS ${OUTBOX_TABLE}`);
  } finally {
    copy.close();
  }
}
