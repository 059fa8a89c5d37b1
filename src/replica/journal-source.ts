/**
 * The local {@link ReplicaSource}: a journal directory on this machine, given either as the primary
 * database's path (the committed head is then the database's `_changetrail_head` row, authoritative) or
 * as the journal directory itself (the head is the advisory `head` marker, never read backwards).
 */
import { copyFileSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { watch as watchFiles } from 'chokidar';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { io, listDirectory } from '../journal/files.js';
import { GENESIS_FILE } from '../journal/format.js';
import { readHeadMarker, readJournalEntries, readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import type { SnapshotRef } from '../journal/entry.js';
import { verifySnapshot } from '../apply/replay.js';
import { positionOf, type Position } from './position-shim.js';
import type { ReplicaSource, SourceEntry, SourceSnapshot, SourceWatch } from './source.js';

const HEAD_QUERY = 'SELECT journal_id, seq, hash FROM _changetrail_head WHERE id = 1';
const SNAPSHOT_NAME = /^snapshot-(\d{1,16})\.db$/;

/**
 * Opens the journal of `source`: a database path (its journal is `<db>.changes/`) or a journal directory.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH when there is no journal there; IO_ERROR.
 */
export function openJournalSource(source: string): ReplicaSource {
  if (typeof source !== 'string' || source.length === 0) throw new TypeError('openReplica: source must be a non-empty path');
  const absolute = io('resolve source', source, () => realpathSync(resolve(source)));
  const isDirectory = io('stat source', absolute, () => statSync(absolute).isDirectory());
  const dir = isDirectory ? absolute : `${absolute}.changes`;
  const identity = io('read manifest', dir, () => readManifest(dir));
  if (identity === null) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `open source ${source}: ${dir} holds no changetrail journal (no manifest)`, {
      databaseJournalId: null, journalJournalId: null, reason: 'journal directory missing',
    });
  }
  return new JournalDirectorySource(dir, identity, isDirectory ? null : absolute);
}

class JournalDirectorySource implements ReplicaSource {
  readonly description: string;
  readonly root: Position;
  readonly #dir: string;
  readonly #identity: JournalIdentity;
  readonly #databasePath: string | null;
  #database: DatabaseSync | null = null;
  #head: Position;

  constructor(dir: string, identity: JournalIdentity, databasePath: string | null) {
    this.#dir = dir;
    this.#identity = identity;
    this.#databasePath = databasePath;
    this.description = databasePath ?? dir;
    this.root = positionOf(identity.manifest.journalId, 0, identity.rootHash);
    this.#head = this.root;
  }

  readHead(): Position {
    if (this.#databasePath !== null) {
      // Authoritative: taken as it is, so a database restored to an older state shows as going back.
      this.#head = this.#readDatabaseHead() ?? this.#head;
      return this.#head;
    }
    const marker = this.#readMarker();
    if (marker !== null && (marker.journalId !== this.#head.journalId || marker.seq > this.#head.seq)) this.#head = marker;
    return this.#head;
  }

  *entriesAfter(from: Position, to: Position): Generator<SourceEntry> {
    if (to.seq <= from.seq) return;
    const committed = { seq: to.seq, hash: Buffer.from(to.hash, 'hex') };
    const first = Math.max(1, from.seq);
    for (const entry of readJournalEntries(this.#dir, { identity: this.#identity, committed, from: first, to: to.seq })) {
      const hash = toHex(entry.hash);
      if (entry.seq === from.seq) {
        if (hash !== from.hash) throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${entry.file}: entry ${from.seq} is not the entry the replica applied`, { seq: from.seq, file: entry.file });
        continue;
      }
      if (from.seq === 0 && entry.seq === 1 && toHex(entry.prevHash) !== from.hash) {
        throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${entry.file}: entry 1 does not chain to the root`, { seq: 0, file: entry.file });
      }
      yield {
        seq: entry.seq, kind: entry.kind, hash, time: entry.time, changeset: entry.changeset,
        ...(entry.sql === undefined ? {} : { sql: entry.sql }),
        ...(entry.snapshot === undefined ? {} : { snapshot: entry.snapshot }),
        ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
      };
    }
  }

  hashAt(seq: number, head: Position): string | null {
    if (seq === 0) return this.root.hash;
    if (seq > head.seq) return null;
    const committed = { seq: head.seq, hash: Buffer.from(head.hash, 'hex') };
    for (const entry of readJournalEntries(this.#dir, { identity: this.#identity, committed, from: seq, to: seq })) return toHex(entry.hash);
    return null;
  }

  newestSnapshot(head: Position): SourceSnapshot {
    const candidates = listDirectory(this.#dir).map((name) => SNAPSHOT_NAME.exec(name)).filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1])).filter((seq) => seq <= head.seq).sort((a, b) => b - a);
    const committed = { seq: head.seq, hash: Buffer.from(head.hash, 'hex') };
    for (const seq of candidates) {
      for (const entry of readJournalEntries(this.#dir, { identity: this.#identity, committed, from: seq, to: seq })) {
        if (entry.kind === 'resync' && entry.snapshot !== undefined) return { position: positionOf(this.root.journalId, seq, entry.hash), ref: entry.snapshot };
      }
    }
    const manifest = this.#identity.manifest;
    return { position: this.root, ref: { file: GENESIS_FILE, sha256: manifest.genesisSha256, size: manifest.genesisSize } };
  }

  copySnapshot(ref: SnapshotRef, targetPath: string): void {
    verifySnapshot(this.#dir, ref.file, ref.sha256, ref.size);
    io('copy snapshot', targetPath, () => copyFileSync(join(this.#dir, ref.file), targetPath));
    // Verified before and after the copy: what was copied is what the journal names.
    const copied = targetPath.slice(targetPath.lastIndexOf('/') + 1);
    verifySnapshot(targetPath.slice(0, targetPath.lastIndexOf('/')), copied, ref.sha256, ref.size);
  }

  async watch(wake: () => void): Promise<SourceWatch> {
    const watcher = watchFiles(this.#dir, { ignoreInitial: true, depth: 0, persistent: false, atomic: false });
    // 'raw' is the file system's own event (inotify: well under a millisecond); chokidar's 'change' is
    // confirmed by a stat and arrives 1-45 ms later (measured). Either only wakes the follower.
    watcher.on('raw', () => wake());
    watcher.on('all', () => wake());
    watcher.on('error', () => undefined); // a hint only: the follower polls as well
    await new Promise<void>((resolveReady) => watcher.once('ready', () => resolveReady()));
    return { close: () => watcher.close() };
  }

  close(): void {
    this.#database?.close();
    this.#database = null;
  }

  #readMarker(): Position | null {
    const marker = readHeadMarker(this.#dir);
    if (marker === null) return null;
    return positionOf(marker.journalId, marker.seq, marker.hash);
  }

  #readDatabaseHead(): Position | null {
    const db = this.#openDatabase();
    let row: Record<string, unknown> | undefined;
    try {
      row = db.prepare(HEAD_QUERY).get();
    } catch (cause) {
      // Busy (a writer committing) or a hot journal a read-only connection cannot roll back: try again later.
      if ((cause as { code?: string }).code === 'ERR_SQLITE_ERROR') return null;
      throw cause;
    }
    if (row === undefined || !(row.hash instanceof Uint8Array)) throw this.#mismatch(null, 'the database has no changetrail head row');
    return positionOf(String(row.journal_id), Number(row.seq), row.hash);
  }

  #openDatabase(): DatabaseSync {
    if (this.#database === null) this.#database = new DatabaseSync(this.#databasePath!, { readOnly: true, timeout: 1000 });
    return this.#database;
  }

  #mismatch(databaseJournalId: string | null, reason: string): ChangetrailError<'JOURNAL_MISMATCH'> {
    return new ChangetrailError('JOURNAL_MISMATCH', `read head of ${this.description}: ${reason}`, {
      databaseJournalId, journalJournalId: this.root.journalId, reason,
    });
  }
}
