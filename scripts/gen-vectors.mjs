#!/usr/bin/env node
/**
 * Regenerates the conformance vectors of journal/vectors/ (except `basic`, which test/journal/golden.ts
 * owns), deterministically: fixed journal id, times and epochs; changesets captured by real node:sqlite
 * sessions from fixed statements; snapshot files made with VACUUM INTO and their header's "SQLite version
 * that last wrote" field (offset 96) fixed, so the bytes do not depend on the SQLite version.
 *
 *   npm run build && node scripts/gen-vectors.mjs [outDir]     (default: journal/vectors)
 *
 * Changing a vector is a format change (journal/FORMAT.md §9). test/replicas/vectors.test.ts checks that
 * this script reproduces the committed files byte for byte, and that the Node and Python readers both
 * agree with every expected.json. What the fields of expected.json mean: journal/vectors/README.md.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { Packr } from 'msgpackr';
import { encodeEntryBody, hashEntryBody } from '../dist/journal/entry.js';
import { encodeFrame } from '../dist/journal/frame.js';
import { encodeHead } from '../dist/journal/head.js';
import { chainRootHash, encodeManifest } from '../dist/journal/manifest.js';
import { encodeSegmentHeader, formatSegmentName } from '../dist/journal/segment.js';
import { checksum, fromHex, sha256, toHex } from '../dist/journal/bytes.js';
import { summarizeChangeset } from '../dist/changeset/index.js';
import { applyChangesetExactly } from '../dist/apply/apply-entry.js';
import { RowidCapture } from '../dist/write/rowid-capture.js';
import { collectMigrationRowids, readTableRoots } from '../dist/write/migration-rowids.js';
import { encodeRowids } from '../dist/journal/rowids.js';
import { encodeBase } from '../dist/journal/retention-base.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const JOURNAL_ID = fromHex('0f1e2d3c4b5a69788796a5b4c3d2e1f0');
const CREATED_AT_MS = 1_767_225_600_000;
/** The "version of SQLite that last wrote the file" header field, fixed in every snapshot file. */
const SNAPSHOT_SQLITE_VERSION = 3_053_004;

// ---- capturing a source's history ----------------------------------------------------------------------

/** A source database whose transactions are captured like changetrail's writer does. */
class Source {
  constructor(dir, schemaSql) {
    this.dir = dir;
    this.path = join(dir, 'source.db');
    this.db = new DatabaseSync(this.path);
    this.db.exec('PRAGMA foreign_keys = ON');
    this.db.exec(schemaSql);
    this.capture = new RowidCapture(this.db);
  }

  /**
   * Runs `sql` in one transaction under a session, with the writer's rowid capture; the changeset and the
   * rowids are taken before COMMIT. Returns `{ changeset, rowids? }`.
   */
  write(sql) {
    this.db.exec('BEGIN IMMEDIATE');
    this.capture.begin();
    const session = this.db.createSession();
    try {
      this.db.exec(sql);
      const changeset = session.changeset();
      const rowids = this.capture.collect();
      this.db.exec('COMMIT');
      return { changeset, ...(rowids.length === 0 ? {} : { rowids: encodeRowids(rowids) }) };
    } finally {
      session.close();
    }
  }

  /**
   * A migration as trail.migrate runs it: foreign keys off, one transaction, one session, no capture
   * triggers; the rowids of the rows it leaves in keyed rowid tables are recorded (FORMAT.md §6.1).
   * `renumber` runs after the script in the same transaction, unrecorded: it stands for a script whose
   * row order another run would not repeat (`ORDER BY random()`), which a vector cannot contain.
   */
  migrate(sql, renumber = null) {
    this.capture.suspend();
    this.db.exec('PRAGMA foreign_keys = OFF');
    this.db.exec('BEGIN IMMEDIATE');
    const roots = readTableRoots(this.db);
    const session = this.db.createSession();
    try {
      this.db.exec(sql);
      const changeset = session.changeset();
      if (renumber !== null) this.db.exec(renumber);
      const rowids = collectMigrationRowids(this.db, roots, changeset);
      this.db.exec('COMMIT');
      return { changeset, ...(rowids.length === 0 ? {} : { rowids: encodeRowids(rowids) }) };
    } finally {
      session.close();
      this.db.exec('PRAGMA foreign_keys = ON');
    }
  }

  /** Undo as trail.undo does: the inverse (rowids too) applied exactly, foreign keys checked, recorded. */
  undo(entry) {
    this.capture.begin();
    const session = this.db.createSession();
    try {
      applyChangesetExactly(this.db, entry.changeset, { invert: true, checkForeignKeys: true, ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }) });
      const rowids = this.capture.collect();
      return { changeset: session.changeset(), ...(rowids.length === 0 ? {} : { rowids: encodeRowids(rowids) }) };
    } finally {
      session.close();
    }
  }

  /** A snapshot file of the current user tables (VACUUM INTO, version field fixed). */
  snapshot() {
    const temp = join(this.dir, `snapshot-${Math.random().toString(16).slice(2)}.tmp`);
    this.db.prepare('VACUUM INTO ?').run(temp);
    const bytes = new Uint8Array(readFileSync(temp));
    rmSync(temp);
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(96, SNAPSHOT_SQLITE_VERSION);
    return bytes;
  }

  close() {
    this.db.close();
  }
}

// ---- encoding a journal --------------------------------------------------------------------------------

/**
 * Encodes a journal: `specs` are entries without seq/prevHash/time; `rotateBefore` lists the sequence
 * numbers that start a new segment. Returns the files and the decoded view (for expected.json).
 */
function encodeJournal(genesis, specs, rotateBefore = []) {
  const manifest = encodeManifest({ journalId: JOURNAL_ID, createdAtMs: CREATED_AT_MS, genesisSha256: sha256(genesis), genesisSize: genesis.byteLength });
  const files = { manifest, 'genesis.db': genesis };
  const entries = [];
  let prevHash = chainRootHash(manifest);
  let segmentName = formatSegmentName(1);
  let segment = [encodeSegmentHeader({ journalId: JOURNAL_ID, firstSeq: 1 })];
  specs.forEach((spec, index) => {
    const seq = index + 1;
    if (rotateBefore.includes(seq)) {
      files[segmentName] = concat(segment);
      segmentName = formatSegmentName(seq);
      segment = [encodeSegmentHeader({ journalId: JOURNAL_ID, firstSeq: seq })];
    }
    const body = {
      seq, kind: spec.kind, time: CREATED_AT_MS + seq * 1000, epoch: spec.epoch ?? 1, actor: spec.actor ?? null,
      message: spec.message ?? null, meta: spec.meta ?? null, prevHash, tables: summarizeChangeset(spec.changeset), changeset: spec.changeset,
      ...(spec.sql === undefined ? {} : { sql: spec.sql }),
      ...(spec.snapshot === undefined ? {} : { snapshot: spec.snapshot }),
      ...(spec.undoes === undefined ? {} : { undoes: spec.undoes }),
      ...(spec.rowids === undefined ? {} : { rowids: spec.rowids }),
      ...(spec.at === undefined ? {} : { at: spec.at }),
    };
    const encoded = encodeEntryBody(body);
    const hash = hashEntryBody(encoded);
    segment.push(encodeFrame(seq, encoded));
    entries.push({ body, hash });
    prevHash = hash;
  });
  files[segmentName] = concat(segment);
  return { files, manifest, entries };
}

function headFile(seq, hash) {
  return encodeHead({ journalId: JOURNAL_ID, seq, hash });
}

/** An entry as expected.json lists it: the decoded body (bytes as hex) and its hash. */
function entryJson({ body, hash }) {
  return {
    seq: body.seq, kind: body.kind, time: body.time, epoch: body.epoch, actor: body.actor, message: body.message, meta: body.meta,
    prevHash: toHex(body.prevHash), tables: body.tables, changeset: toHex(body.changeset),
    ...(body.sql === undefined ? {} : { sql: body.sql }),
    ...(body.snapshot === undefined ? {} : { snapshot: { file: body.snapshot.file, sha256: toHex(body.snapshot.sha256), size: body.snapshot.size } }),
    ...(body.undoes === undefined ? {} : { undoes: body.undoes }),
    ...(body.rowids === undefined ? {} : { rowids: toHex(body.rowids) }),
    ...(body.at === undefined ? {} : { at: { seq: body.at.seq, hash: toHex(body.at.hash) } }),
    hash: toHex(hash),
  };
}

/** The fields `changetrail log --json` prints (src/cli/io.ts entryLine). */
function logLine({ body, hash }) {
  return {
    seq: body.seq, kind: body.kind, time: new Date(body.time).toISOString(), actor: body.actor, message: body.message,
    hash: toHex(hash), prevHash: toHex(body.prevHash), tables: body.tables, ...(body.meta === null ? {} : { meta: body.meta }),
    ...(body.undoes === undefined ? {} : { undoes: body.undoes }),
  };
}

/**
 * expected.json: `entries`/`log` are what a reader yields (in order); `error` is what it reports (null:
 * it reaches the committed head). `verify` is the verification report, or null when
 * verification fails with `verifyError`.
 */
function expectation(description, journal, head, readable, error, { verifyError = error, state } = {}) {
  // A reader yields only entries proven to chain to the committed head (FORMAT.md §8): when a committed
  // entry is damaged, nothing of these small journals is yielded.
  const yielded = error === null ? journal.entries.slice(0, readable) : [];
  return {
    description,
    manifest: { journalId: toHex(JOURNAL_ID), createdAtMs: CREATED_AT_MS, genesisSha256: toHex(sha256(journal.files['genesis.db'])), genesisSize: journal.files['genesis.db'].byteLength },
    rootHash: toHex(chainRootHash(journal.manifest)),
    head: { journalId: toHex(JOURNAL_ID), seq: head.seq, hash: toHex(head.hash) },
    entries: yielded.map(entryJson),
    log: yielded.map(logLine),
    error,
    verify: verifyError === null ? {
      headSeq: head.seq, headHash: toHex(head.hash), head: { journalId: toHex(JOURNAL_ID), seq: head.seq, hash: toHex(head.hash) }, entries: head.seq, replayed: false,
    } : null,
    verifyError,
    ...(state === undefined ? {} : { state }),
  };
}

// ---- state dumps (expected.json `state`) ---------------------------------------------------------------

/** A value as `state` lists it: its storage type and exact content (REAL by its IEEE-754 bits). */
export function renderValue(value) {
  if (value === null) return null;
  if (typeof value === 'bigint') return `integer:${value}`;
  if (typeof value === 'number') {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    return `real:${view.getBigUint64(0).toString(16).padStart(16, '0')}`;
  }
  if (typeof value === 'string') return `text:${value}`;
  return `blob:${Buffer.from(value).toString('hex')}`;
}

/**
 * Every table that sessions record (ordinary and shadow tables of `main`, not changetrail's own, not
 * sqlite_*): its rows as arrays of rendered values — the rowid first for rowid tables, then the
 * non-hidden columns — sorted by their JSON text.
 */
export function dumpState(path) {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables = db.prepare(`SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow')
      AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND lower(name) NOT LIKE '\\_changetrail%' ESCAPE '\\' ORDER BY name`).all();
    const state = {};
    for (const { name, wr } of tables) {
      const columns = db.prepare(`SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid`).all(name)
        .map((c) => `"${String(c.name).replaceAll('"', '""')}"`);
      if (wr === 0) columns.unshift('rowid');
      const statement = db.prepare(`SELECT ${columns.join(', ')} FROM main."${String(name).replaceAll('"', '""')}"`);
      statement.setReadBigInts(true);
      statement.setReturnArrays(true);
      state[name] = statement.all().map((row) => row.map(renderValue)).sort((a, b) => cmp(JSON.stringify(a), JSON.stringify(b)));
    }
    return state;
  } finally {
    db.close();
  }
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- the vectors ---------------------------------------------------------------------------------------

const KINDS_SCHEMA = `
CREATE TABLE author(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE post(id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE, title TEXT NOT NULL);
CREATE TABLE tag(post_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY(tag, post_id)) WITHOUT ROWID;
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT NOT NULL);
CREATE TRIGGER post_ai AFTER INSERT ON post BEGIN INSERT INTO audit(what) VALUES ('insert post ' || new.id); END;
CREATE TRIGGER post_ad AFTER DELETE ON post BEGIN INSERT INTO audit(what) VALUES ('delete post ' || old.id); END;
CREATE TABLE note(slug TEXT PRIMARY KEY, author_id INTEGER REFERENCES author(id) ON DELETE CASCADE, body TEXT NOT NULL);
CREATE VIRTUAL TABLE note_fts USING fts5(body, content='note', content_rowid='rowid');
CREATE TRIGGER note_ai AFTER INSERT ON note BEGIN INSERT INTO note_fts(rowid, body) VALUES (new.rowid, new.body); END;
CREATE TRIGGER note_ad AFTER DELETE ON note BEGIN INSERT INTO note_fts(note_fts, rowid, body) VALUES ('delete', old.rowid, old.body); END;
INSERT INTO author VALUES (1, 'ann'), (2, 'bob');
INSERT INTO note VALUES ('intro', 1, 'hello notes');
`;

const KINDS_MIGRATION = `CREATE VIRTUAL TABLE post_fts USING fts5(title, content='post', content_rowid='id');
CREATE TRIGGER post_fts_ai AFTER INSERT ON post BEGIN INSERT INTO post_fts(rowid, title) VALUES (new.id, new.title); END;
CREATE TRIGGER post_fts_ad AFTER DELETE ON post BEGIN INSERT INTO post_fts(post_fts, rowid, title) VALUES ('delete', old.id, old.title); END;
INSERT INTO post_fts(post_fts) VALUES ('rebuild');
ALTER TABLE author ADD COLUMN email TEXT;
UPDATE author SET email = name || '@example.org';`;

/** Every entry kind in one journal: write, schema, write with cascades, undo, resync, write after it. */
function kindsVector(work) {
  const source = new Source(work, KINDS_SCHEMA);
  const genesis = source.snapshot();
  const specs = [];
  specs.push({ kind: 'write', actor: 'ann@host', message: 'first posts', meta: { ticket: 'T-7', n: 2, nested: { ok: true, list: [1, 'x', null] } },
    ...source.write(`INSERT INTO post VALUES (1, 1, 'hello world'), (2, 2, 'bob writes'), (3, 2, 'more from bob');
      INSERT INTO tag VALUES (1, 'greeting'), (2, 'bob'), (3, 'bob');
      INSERT INTO note VALUES ('bob-1', 2, 'bob notes'), ('bob-2', 2, 'more bob notes');`) });
  specs.push({ kind: 'schema', message: 'full-text index, author email', sql: KINDS_MIGRATION, ...source.migrate(KINDS_MIGRATION) });
  const cascade = source.write(`DELETE FROM author WHERE id = 2; INSERT INTO post VALUES (4, 1, 'hello again'); UPDATE author SET name = 'Ann' WHERE id = 1;
    INSERT INTO note VALUES ('later', 1, 'a later note');`);
  specs.push({ kind: 'write', actor: 'ann@host', message: 'remove bob', ...cascade });
  specs.push({ kind: 'write', actor: 'ann@host', message: 'undo entry 3', undoes: 3, ...source.undo(cascade) });
  // A foreign write (outside changetrail), then the resync entry that records the new base state.
  source.db.exec(`INSERT INTO author VALUES (3, 'cy', 'cy@example.org'); INSERT INTO post VALUES (5, 3, 'hello from cy');`);
  const snapshot = source.snapshot();
  specs.push({ kind: 'resync', message: 'foreign write', changeset: new Uint8Array(0), snapshot: { file: 'snapshot-5.db', sha256: sha256(snapshot), size: snapshot.byteLength } });
  specs.push({ kind: 'write', ...source.write(`DELETE FROM post WHERE id = 1; INSERT INTO tag VALUES (5, 'cy'); INSERT OR REPLACE INTO note VALUES ('intro', 1, 'hello again, notes');`) });
  const state = dumpState(source.path);
  source.close();
  const journal = encodeJournal(genesis, specs);
  journal.files['snapshot-5.db'] = snapshot;
  const last = journal.entries.at(-1);
  journal.files.head = headFile(last.body.seq, last.hash);
  return { files: journal.files, expected: expectation('every entry kind: write (trigger-filled audit table, WITHOUT ROWID, a keyed rowid table with an FTS5 index on its rowid: body version 2 with `rowids`), schema (FTS5 external content index with triggers, ALTER TABLE, DML), write with an ON DELETE CASCADE, undo (undoes, rowids restored), resync (snapshot-5.db) after a foreign write, write after the resync (INSERT OR REPLACE moves a rowid). A follower reproduces `state`, rowids included.', journal, { seq: last.body.seq, hash: last.hash }, journal.entries.length, null, { state }) };
}

const MIGRATION_ROWIDS_SCHEMA = `CREATE TABLE item(sku TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL);
INSERT INTO item VALUES ('a', 'apple'), ('b', 'banana'), ('c', 'cherry'), ('d', 'date');`;

const MIGRATION_ROWIDS_SQL = `CREATE TABLE shelf(sku TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, UNIQUE(name));
INSERT INTO shelf SELECT sku, name FROM item ORDER BY sku;
INSERT INTO item VALUES ('e', 'elderberry');`;

/**
 * A schema entry whose rows the source numbered otherwise than a re-run of its script does: its `rowids`
 * list every row of the keyed rowid table it created and the row it inserted into an existing one.
 */
function migrationRowidsVector(work) {
  const source = new Source(work, MIGRATION_ROWIDS_SCHEMA);
  const genesis = source.snapshot();
  const specs = [];
  specs.push({ kind: 'schema', message: 'copy items to a shelf', sql: MIGRATION_ROWIDS_SQL, ...source.migrate(MIGRATION_ROWIDS_SQL, 'UPDATE shelf SET rowid = 15 - rowid') });
  specs.push({ kind: 'write', ...source.write(`UPDATE shelf SET name = 'Cherry' WHERE sku = 'c'; DELETE FROM shelf WHERE sku = 'b'`) });
  const state = dumpState(source.path);
  source.close();
  const journal = encodeJournal(genesis, specs);
  const last = journal.entries.at(-1);
  journal.files.head = headFile(last.body.seq, last.hash);
  return { files: journal.files, expected: expectation('a schema entry with `rowids` (FORMAT.md §6.1, schema entries): the migration copied item into a new keyed rowid table shelf, whose rows the source numbered 14, 13, 12, 11 where re-running the script numbers them 1..4, and inserted item e (rowid 5); every listed row has before = NULL. A follower re-runs the script, then moves each listed row to its `after` rowid (REPLAY.md schema entries step 6). Then a write on shelf. `state` includes rowids.', journal, { seq: last.body.seq, hash: last.hash }, journal.entries.length, null, { state }) };
}

const SMALL_SCHEMA = 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL);';

/** A small journal of `count` writes on t(id, name), the base of the rotation and damage vectors. */
function smallJournal(work, count, rotateBefore = []) {
  const source = new Source(work, SMALL_SCHEMA);
  const genesis = source.snapshot();
  const specs = [];
  for (let seq = 1; seq <= count; seq++) {
    const sql = seq % 3 === 0 ? `UPDATE t SET name = name || '!' WHERE id = ${seq - 1}` : `INSERT INTO t VALUES (${seq}, 'row ${seq}')`;
    specs.push({ kind: 'write', actor: seq % 2 === 0 ? null : 'writer', ...source.write(sql) });
  }
  const state = dumpState(source.path);
  source.close();
  const journal = encodeJournal(genesis, specs, rotateBefore);
  return { journal, state };
}

function committedHead(journal, seq) {
  return { seq, hash: journal.entries[seq - 1].hash };
}

function withHead(journal, seq) {
  const head = committedHead(journal, seq);
  return { ...journal.files, head: headFile(head.seq, head.hash) };
}

/** Where entry `seq`'s frame starts in the single segment of a small journal. */
function frameOffset(journal, seq) {
  let offset = 40;
  for (let i = 0; i < seq - 1; i++) offset += 16 + encodeEntryBody(journal.entries[i].body).byteLength;
  return offset;
}

/** Rewrites entry `seq`'s frame in place with another body (and a valid CRC for it). */
function replaceFrame(segment, offset, seq, body, frameSeq = seq) {
  const oldSize = new DataView(segment.buffer, segment.byteOffset).getUint32(offset);
  const frame = encodeFrame(frameSeq, body);
  return concat([segment.subarray(0, offset), frame, segment.subarray(offset + 16 + oldSize)]);
}

function error(code, seq) {
  return seq === undefined ? { code } : { code, seq };
}

function damageVectors(work) {
  const vectors = {};
  const SEG = formatSegmentName(1);
  const base = () => smallJournal(mkdtempSync(join(work, 's-')), 4);

  {
    const { journal, state } = smallJournal(mkdtempSync(join(work, 's-')), 7, [3, 6]);
    vectors['segment-rotation'] = { files: withHead(journal, 7), expected: expectation('seven writes in three segments (00..01, 00..03, 00..06): a reader continues across segment files in name order.', journal, committedHead(journal, 7), 7, null, { state }) };
  }
  {
    const { journal, state } = base();
    const files = withHead(journal, 3);
    const offset = frameOffset(journal, 4);
    files[SEG] = files[SEG].subarray(0, offset + 16 + 5); // entry 4's frame cut inside its body
    vectors['torn-tail'] = { files, expected: expectation('the committed head is entry 3; entry 4 was being written when the writer died (its frame ends inside the body). Bytes past the head are not committed: a reader yields 1..3 and no error.', journal, committedHead(journal, 3), 3, null, { state: undefined }) };
  }
  {
    const { journal } = base();
    vectors['uncommitted-frame'] = { files: withHead(journal, 3), expected: expectation('the committed head is entry 3; a complete, valid frame for entry 4 follows (appended and fsynced before a COMMIT that did not happen). A reader MUST NOT yield it.', journal, committedHead(journal, 3), 3, null) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    files[SEG] = files[SEG].subarray(0, frameOffset(journal, 4) + 10);
    vectors['torn-committed'] = { files, expected: expectation('the head names entry 4 but its frame ends inside the frame header: JOURNAL_TORN_TAIL (seq 4). A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 3, error('JOURNAL_TORN_TAIL', 4)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const bytes = files[SEG].slice();
    bytes[frameOffset(journal, 2) + 16 + 20] ^= 0x01;
    files[SEG] = bytes;
    vectors['corrupt-frame'] = { files, expected: expectation('one bit of entry 2\'s body flipped: its frame CRC fails, JOURNAL_CHECKSUM_MISMATCH (seq 2). A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 1, error('JOURNAL_CHECKSUM_MISMATCH', 2)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const body = { ...journal.entries[1].body, message: 'rewritten history' };
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, encodeEntryBody(body));
    vectors['broken-chain'] = { files, expected: expectation('entry 2 was rewritten and re-checksummed: its frame is valid but entry 3\'s prevHash no longer matches its hash: JOURNAL_CHAIN_BROKEN (seq 3). A reader yields no entry: none can be proven to chain to the head.', { ...journal, entries: [journal.entries[0], { body, hash: hashEntryBody(encodeEntryBody(body)) }, ...journal.entries.slice(2)] }, committedHead(journal, 4), 2, error('JOURNAL_CHAIN_BROKEN', 3)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const body = { ...journal.entries[3].body, message: 'rewritten head' };
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 4), 4, encodeEntryBody(body));
    vectors['head-mismatch'] = { files, expected: expectation('the last entry was rewritten and re-checksummed; its prevHash is right, but its hash is not the committed head\'s: JOURNAL_CHAIN_BROKEN (seq 4). A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 3, error('JOURNAL_CHAIN_BROKEN', 4)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const body = { ...journal.entries[2].body, seq: 4 };
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 3), 3, encodeEntryBody(body), 4);
    vectors['sequence-gap'] = { files, expected: expectation('the frame after entry 2 carries seq 4 (valid CRC): JOURNAL_GAP. A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 2, error('JOURNAL_GAP')) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const bytes = files[SEG].slice();
    const data = new DataView(bytes.buffer);
    data.setUint16(4, 2);
    data.setUint32(36, checksum(bytes.subarray(0, 36)));
    files[SEG] = bytes;
    vectors['unknown-segment-version'] = { files, expected: expectation('the segment header says version 2 (valid CRC): JOURNAL_VERSION_UNSUPPORTED; no entry is read.', journal, committedHead(journal, 4), 0, error('JOURNAL_VERSION_UNSUPPORTED')) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const bytes = files.manifest.slice();
    const data = new DataView(bytes.buffer);
    data.setUint16(4, 2);
    data.setUint32(76, checksum(bytes.subarray(0, 76)));
    files.manifest = bytes;
    const expected = expectation('the manifest says version 2 (valid CRC): JOURNAL_VERSION_UNSUPPORTED; nothing else is read.', journal, committedHead(journal, 4), 0, error('JOURNAL_VERSION_UNSUPPORTED'));
    expected.manifest = null;
    expected.rootHash = null;
    vectors['unknown-manifest-version'] = { files, expected };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const body = encodeEntryBody(journal.entries[1].body);
    const patched = body.slice();
    if (patched[1] !== 0xa1 || patched[2] !== 0x76 || patched[3] !== 0x01) throw new Error('unexpected body start');
    patched[3] = 0x02; // {v: 1, ...}: fixmap, fixstr "v", then the value byte
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, patched);
    vectors['unknown-body-version'] = { files, expected: expectation('entry 2\'s body says v = 2 (valid CRC): JOURNAL_MALFORMED (seq 2). A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 1, error('JOURNAL_MALFORMED', 2)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, withExtraKey(encodeEntryBody(journal.entries[1].body)));
    vectors['unknown-body-key'] = { files, expected: expectation('entry 2\'s body has an extra key "x" (valid CRC): JOURNAL_MALFORMED (seq 2). A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 1, error('JOURNAL_MALFORMED', 2)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const rowids = encodeRowids([{ table: 't', keyOrdinals: [1], rows: [{ key: [2n], before: 7n, after: 7n }] }]);
    // rawBody: the reference writer now refuses such rowids (it checks them with the readers' decoder).
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, rawBody(journal.entries[1].body, { v: 2, rowids }));
    vectors['rowids-malformed'] = { files, expected: expectation('entry 2 is a version-2 body whose `rowids` lists a row with before = after (FORMAT.md §6.1): JOURNAL_MALFORMED (seq 2).' + ' A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 0, error('JOURNAL_MALFORMED', 2)) };
  }
  {
    const { journal } = base();
    const files = withHead(journal, 4);
    const rowids = encodeRowids([{ table: 't', keyOrdinals: [1], rows: [{ key: [2n], before: null, after: 2n }] }]);
    const body = encodeEntryBody({ ...journal.entries[1].body, rowids }).slice();
    if (body[1] !== 0xa1 || body[2] !== 0x76 || body[3] !== 0x02) throw new Error('unexpected body start');
    body[3] = 0x01;
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, body);
    vectors['rowids-in-v1'] = { files, expected: expectation('entry 2 is a version-1 body with a (valid) `rowids` key, which only version 2 may have: JOURNAL_MALFORMED (seq 2).' + ' A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 0, error('JOURNAL_MALFORMED', 2)) };
  }
  {
    const source = new Source(mkdtempSync(join(work, 'g-')), SMALL_SCHEMA);
    const genesis = source.snapshot();
    const write = source.write(`INSERT INTO t VALUES (1, 'one')`);
    source.close();
    const sql = `ATTACH DATABASE 'victim.db' AS victim; CREATE TABLE victim.stolen(x); DETACH DATABASE victim;`;
    const journal = encodeJournal(genesis, [{ kind: 'write', ...write }, { kind: 'schema', sql, changeset: new Uint8Array(0) }]);
    const head = committedHead(journal, 2);
    const expected = expectation('a valid, chained schema entry whose script ATTACHes another file: reading and verification succeed; replaying it is refused by the replay guard (REPLAY.md), REPLAY_REFUSED at entry 2, and nothing outside the target is touched.', journal, head, 2, null);
    vectors['replay-refused'] = { files: { ...journal.files, head: headFile(head.seq, head.hash) }, expected: { ...expected, replayError: error('REPLAY_REFUSED', 2) } };
  }
  const invalid = (name, description, overrides) => {
    const { journal } = base();
    const files = withHead(journal, 4);
    files[SEG] = replaceFrame(files[SEG], frameOffset(journal, 2), 2, rawBody(journal.entries[1].body, overrides));
    vectors[name] = { files, expected: expectation(`${description}: JOURNAL_MALFORMED (seq 2). A reader yields no entry: none can be proven to chain to the head.`, journal, committedHead(journal, 4), 0, error('JOURNAL_MALFORMED', 2)) };
  };
  invalid('schema-without-sql', 'entry 2 is a schema entry without `sql` (FORMAT.md §6.2)', { kind: 'schema' });
  invalid('resync-wrong-snapshot', 'entry 2 is a resync entry whose snapshot is not named snapshot-2.db (FORMAT.md §6.2)',
    { kind: 'resync', snapshot: { file: 'snapshot-1.db', sha256: new Uint8Array(32), size: 0 } });
  invalid('undoes-later-entry', 'entry 2 says it undoes entry 3 (FORMAT.md §6.2: undoes < seq)', { undoes: 3 });
  invalid('time-out-of-range', 'entry 2\'s time is 253402300800000, past 9999-12-31T23:59:59.999Z (FORMAT.md §6.2)', { time: 253402300800000 });
  invalid('meta-too-deep', 'entry 2\'s meta nests 65 levels (FORMAT.md §6.2: at most 64)', {
    meta: { deep: Array.from({ length: 64 }).reduce((inner) => [inner], 1) }, // the map, then 64 arrays
  });
  invalid('message-too-long', 'entry 2\'s message has 262145 UTF-8 bytes (FORMAT.md §6.2: at most 262144)', { message: 'é'.repeat(131072) + 'x' });
  {
    const { journal } = smallJournal(mkdtempSync(join(work, 's-')), 4, [3]);
    const files = withHead(journal, 4);
    delete files[formatSegmentName(3)];
    vectors['missing-segment'] = { files, expected: expectation('the head names entry 4 but the segment holding entries 3..4 is gone: JOURNAL_BEHIND_DATABASE. A reader yields no entry: none can be proven to chain to the head.', journal, committedHead(journal, 4), 2, error('JOURNAL_BEHIND_DATABASE')) };
  }
  {
    const { files: kinds, expected } = kindsVector(mkdtempSync(join(work, 'k-')));
    const files = { ...kinds, 'snapshot-5.db': kinds['snapshot-5.db'].slice() };
    files['snapshot-5.db'][200] ^= 0xff;
    const { state: _state, ...rest } = expected;
    vectors['bad-snapshot'] = { files, expected: { ...rest, description: 'the journal of `kinds` with one byte of snapshot-5.db changed: reading entries succeeds, verification (and replay) fail with JOURNAL_CHECKSUM_MISMATCH.', verify: null, verifyError: error('JOURNAL_CHECKSUM_MISMATCH') } };
  }
  Object.assign(vectors, outboxVectors(work));
  return vectors;
}

// ---- outbox vectors (FORMAT.md §7.1) ------------------------------------------------------------------

/**
 * A database file holding the head row (format 2) for `headSeq` and outbox rows for `rowSeqs` of a small
 * single-segment journal (VACUUM INTO, version field fixed, like the snapshots). `frames` overrides a row's
 * frame bytes by seq.
 */
function outboxDatabase(work, journal, headSeq, rowSeqs, frames = {}) {
  const frameOf = (seq) => frames[seq] ?? encodeFrame(seq, encodeEntryBody(journal.entries[seq - 1].body));
  const tailOffset = frameOffset(journal, headSeq);
  const path = join(work, `db-${Math.random().toString(16).slice(2)}.db`);
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA page_size = 4096;
    CREATE TABLE _changetrail_head (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, journal_id TEXT NOT NULL,
      seq INTEGER NOT NULL, hash BLOB NOT NULL, segment INTEGER NOT NULL, tail_offset INTEGER NOT NULL, segment_size INTEGER NOT NULL,
      epoch INTEGER NOT NULL, holder TEXT, change_counter INTEGER);
    CREATE TABLE _changetrail_outbox (seq INTEGER PRIMARY KEY, segment INTEGER NOT NULL, offset INTEGER NOT NULL, frame BLOB NOT NULL);`);
  db.prepare('INSERT INTO _changetrail_head VALUES (1, 2, ?, ?, ?, 1, ?, ?, 1, ?, NULL)')
    .run(toHex(JOURNAL_ID), headSeq, journal.entries[headSeq - 1].hash, tailOffset, tailOffset + frameOf(headSeq).byteLength, 'writer');
  const insert = db.prepare('INSERT INTO _changetrail_outbox VALUES (?, 1, ?, ?)');
  for (const seq of rowSeqs) insert.run(seq, frameOffset(journal, seq), frameOf(seq));
  const snapshot = join(work, `db-${Math.random().toString(16).slice(2)}.snapshot`);
  db.prepare('VACUUM INTO ?').run(snapshot);
  db.close();
  const bytes = new Uint8Array(readFileSync(snapshot));
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(96, SNAPSHOT_SQLITE_VERSION);
  return bytes;
}

function outboxVectors(work) {
  const vectors = {};
  const SEG = formatSegmentName(1);
  const base = () => smallJournal(mkdtempSync(join(work, 'o-')), 4).journal;
  {
    const { journal, state } = smallJournal(mkdtempSync(join(work, 'o-')), 4);
    const files = withHead(journal, 2);
    files[SEG] = files[SEG].subarray(0, frameOffset(journal, 3) + 16 + 7);
    files['database.db'] = outboxDatabase(work, journal, 4, [2, 3, 4]);
    vectors['outbox-tail'] = { files, expected: expectation('the database commits entry 4 but the segment ends inside entry 3 (a writer killed after COMMIT, mid-append; the head marker still names 2): a reader of the database takes entries 3 and 4 from its outbox (row 2 is also in the segment) and yields 1..4; a follower reproduces the state.', journal, committedHead(journal, 4), 4, null, { state }) };
  }
  {
    const journal = base();
    const files = withHead(journal, 2);
    const offset = frameOffset(journal, 3);
    const segment = files[SEG].slice(0, frameOffset(journal, 4));
    segment[offset + 16 + 3] ^= 0x01;
    files[SEG] = segment;
    files['database.db'] = outboxDatabase(work, journal, 4, [3, 4]);
    vectors['outbox-damaged-segment'] = { files, expected: expectation('the outbox holds entries 3 and 4; the segment holds all of entry 3 with one byte changed: damage is never read around, JOURNAL_CHECKSUM_MISMATCH (seq 3).', journal, committedHead(journal, 4), 0, error('JOURNAL_CHECKSUM_MISMATCH', 3)) };
  }
  {
    const journal = base();
    const files = withHead(journal, 2);
    files[SEG] = files[SEG].subarray(0, frameOffset(journal, 3));
    const corrupt = encodeFrame(3, encodeEntryBody(journal.entries[2].body));
    corrupt[16 + 3] ^= 0x01;
    files['database.db'] = outboxDatabase(work, journal, 4, [3, 4], { 3: corrupt });
    vectors['outbox-corrupt-row'] = { files, expected: expectation('the segment ends after entry 2; the outbox row of entry 3 has one byte changed: JOURNAL_CHECKSUM_MISMATCH (seq 3).', journal, committedHead(journal, 4), 0, error('JOURNAL_CHECKSUM_MISMATCH', 3)) };
  }
  return vectors;
}

/**
 * A body encoded without the writer's validation (the reference writer refuses invalid bodies), with the
 * writer's msgpack settings and key order: for vectors of bodies a reader must reject.
 */
function rawBody(body, overrides) {
  const packr = new Packr({ useRecords: false, variableMapSize: true, moreTypes: false, int64AsType: 'number' });
  const fields = {
    v: 1, seq: body.seq, kind: body.kind, time: body.time, epoch: body.epoch, actor: body.actor, message: body.message, meta: body.meta,
    prevHash: body.prevHash, tables: body.tables, changeset: body.changeset, ...overrides,
  };
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  const packed = packr.pack(fields);
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
}

/** Adds the key "x": 0 at the end of a msgpack map (fixmap or map16 header). */
function withExtraKey(body) {
  const extra = Uint8Array.of(0xa1, 0x78, 0x00);
  if ((body[0] & 0xf0) === 0x80 && (body[0] & 0x0f) < 15) return concat([Uint8Array.of(body[0] + 1), body.subarray(1), extra]);
  if (body[0] === 0xde) {
    const count = (body[1] << 8) | body[2];
    return concat([Uint8Array.of(0xde, (count + 1) >> 8, (count + 1) & 0xff), body.subarray(3), extra]);
  }
  throw new Error('unexpected msgpack map header');
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * A pruned journal (FORMAT.md §11): writes 1..4, checkpoint 5 holding the state as of entry 4 (it starts
 * segment 5), writes 6..7; then pruned to checkpoint 5: no genesis.db, no segment 1, a `base` file.
 */
function prunedVector(work) {
  const source = new Source(work, SMALL_SCHEMA);
  const genesis = source.snapshot();
  const specs = [];
  for (let seq = 1; seq <= 4; seq++) specs.push({ kind: 'write', actor: 'writer', ...source.write(seq === 3 ? `UPDATE t SET name = 'two!' WHERE id = 2` : `INSERT INTO t VALUES (${seq}, 'row ${seq}')`) });
  const checkpoint = source.snapshot();
  specs.push({ kind: 'checkpoint', message: 'nightly', changeset: new Uint8Array(0), snapshot: { file: 'checkpoint-5.db', sha256: sha256(checkpoint), size: checkpoint.byteLength }, at: null });
  specs.push({ kind: 'write', ...source.write(`DELETE FROM t WHERE id = 1; INSERT INTO t VALUES (6, 'row 6')`) });
  specs.push({ kind: 'write', actor: 'writer', ...source.write(`UPDATE t SET name = 'four?' WHERE id = 4`) });
  const state = dumpState(source.path);
  source.close();
  // The checkpoint names entry 4's hash, known once entries 1..4 are encoded.
  const draft = encodeJournal(genesis, specs.slice(0, 4));
  specs[4].at = { seq: 4, hash: draft.entries[3].hash };
  const journal = encodeJournal(genesis, specs, [5]);
  const last = journal.entries.at(-1);
  const retained = { ...journal, entries: journal.entries.slice(4) };
  const expected = expectation('a pruned journal: writes 1..4, checkpoint 5 (checkpoint-5.db: the state as of entry 4; it starts segment 5), writes 6..7, then pruned to checkpoint 5: genesis.db and segment 1 are gone and `base` names the checkpoint (FORMAT.md §11). A reader yields 5..7, verification starts from checkpoint-5.db, and a follower reproduces `state`.', retained, { seq: last.body.seq, hash: last.hash }, 3, null, { state });
  expected.verify = { ...expected.verify, entries: 3, retainedAfter: 4 };
  const files = { ...journal.files, 'checkpoint-5.db': checkpoint, head: headFile(last.body.seq, last.hash), base: encodeBase(JOURNAL_ID, { seq: 4, hash: toHex(draft.entries[3].hash), checkpointSeq: 5, snapshot: { file: 'checkpoint-5.db', sha256: sha256(checkpoint), size: checkpoint.byteLength } }) };
  delete files['genesis.db'];
  delete files[formatSegmentName(1)];
  return { files, expected };
}

export function generateVectors() {
  const work = mkdtempSync(join(tmpdir(), 'ct-vectors-'));
  try {
    return { kinds: kindsVector(mkdtempSync(join(work, 'k-'))), 'migration-rowids': migrationRowidsVector(mkdtempSync(join(work, 'm-'))), pruned: prunedVector(mkdtempSync(join(work, 'p-'))), ...damageVectors(work) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function writeVectors(outDir) {
  const vectors = generateVectors();
  for (const [name, { files, expected }] of Object.entries(vectors)) {
    const dir = join(outDir, name);
    if (existsSync(dir)) for (const file of readdirSync(dir)) rmSync(join(dir, file));
    mkdirSync(dir, { recursive: true });
    for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, file), bytes);
    writeFileSync(join(dir, 'expected.json'), JSON.stringify(expected, null, 2) + '\n');
  }
  return Object.keys(vectors);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ?? join(ROOT, 'journal', 'vectors');
  console.log(`wrote ${writeVectors(outDir).join(', ')} under ${outDir}`);
}
