/**
 * The local {@link ReplicaSource}: a journal directory on this machine, given either as the primary
 * database's path (the committed head is then the database's `_changetrail_head` row, authoritative) or
 * as the journal directory itself (the head is the advisory `head` marker, never read backwards).
 */
import { copyFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { watch as watchFiles } from 'chokidar';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { io, listDirectory } from '../journal/files.js';
import { HEAD_FILE, SEGMENT_SUFFIX } from '../journal/format.js';
import { readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import { CommittedHeadReader, openJournal, readHeadMarkerPosition, type ByteLocation, type JournalCursor, type ReplayEntry } from '../journal/journal.js';
import { positionOf, type Position } from '../journal/position.js';
import type { SnapshotRef } from '../journal/entry.js';
import { verifySnapshot } from '../apply/replay.js';
import { nearestBaseState } from '../journal/retention-checkpoints.js';
import { pinWhileReading, registerFollower } from '../journal/retention-pins.js';
import type { HeadWait, ReplicaSource, SourceEntry, SourceSnapshot, SourceWatch } from './source.js';

/** A source on this machine: its reads are synchronous. */
export interface LocalReplicaSource extends ReplicaSource {
  entriesAfter(from: Position, to: Position, resume?: string | null): Iterable<SourceEntry>;
  copySnapshot(ref: SnapshotRef, targetPath: string): void;
}

const SNAPSHOT_NAME = /^snapshot-(\d{1,16})\.db$/;
/** How long a head read waits for a writer holding the primary's lock. */
const HEAD_TIMEOUT_MS = 1_000;

/**
 * Opens the journal of `source`: a database path (its journal is `<db>.changes/`) or a journal directory.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH when there is no journal there; IO_ERROR.
 */
export function openJournalSource(source: string): LocalReplicaSource {
  if (typeof source !== 'string' || source.length === 0) throw new TypeError('openReplica: source must be a non-empty path');
  const absolute = io('resolve source', source, () => realpathSync(resolve(source)));
  const isDirectory = io('stat source', absolute, () => statSync(absolute).isDirectory());
  const dir = isDirectory ? absolute : `${absolute}.changes`;
  const identity = readManifest(dir);
  if (identity === null) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `open source ${source}: ${dir} holds no changetrail journal (no manifest)`, {
      databaseJournalId: null, journalJournalId: null, reason: 'journal directory missing',
    });
  }
  return new JournalDirectorySource(dir, identity, isDirectory ? null : absolute);
}

class JournalDirectorySource implements LocalReplicaSource {
  readonly description: string;
  readonly root: Position;
  readonly #dir: string;
  readonly #databasePath: string | null;
  #head: Position;
  /** The tail cursor of the last read, kept while the reader resumes exactly where it stopped. */
  #cursor: JournalCursor | null = null;
  #heads: CommittedHeadReader | null = null;

  constructor(dir: string, identity: JournalIdentity, databasePath: string | null) {
    this.#dir = dir;
    this.#databasePath = databasePath;
    this.description = databasePath ?? dir;
    this.root = positionOf(identity.manifest.journalId, 0, identity.rootHash);
    this.#head = this.root;
  }

  readHead(wait: HeadWait = 'wait'): Position {
    const marker = readHeadMarkerPosition(this.#dir);
    const advanced = marker !== null && marker.journalId === this.#head.journalId && marker.seq > this.#head.seq;
    if (this.#databasePath === null) {
      if (marker !== null && (marker.journalId !== this.#head.journalId || advanced)) this.#head = marker;
      return this.#head;
    }
    // The marker is published after COMMIT, so it names committed entries only, and reading it takes no
    // SQLite lock: while it advances it is the head. When it does not, the database's row is read: it is
    // authoritative (a crash before publishing, another history, or a database that went back). Woken by
    // a change hint ('no-wait'), that read never waits for a writer's lock: a writer committing publishes
    // its marker next, and waiting in SQLite's busy handler against a writer at 200 commits/s took up to
    // 540 ms (measured); the follower's poll reads it waiting.
    if (advanced) {
      this.#head = marker;
      return this.#head;
    }
    this.#heads ??= new CommittedHeadReader(this.#databasePath);
    this.#head = this.#heads.read(wait === 'wait' ? HEAD_TIMEOUT_MS : 0) ?? this.#head;
    return this.#head;
  }

  *entriesAfter(from: Position, to: Position, resume?: string | null): Generator<SourceEntry> {
    if (to.seq <= from.seq) return;
    const cursor = this.#cursorAt(from, to, parseLocation(resume));
    for (const entry of cursor.readForReplay()) {
      yield new LocalSourceEntry(entry);
      if (entry.seq >= to.seq) return;
    }
  }

  hashAt(seq: number, head: Position): string | null {
    if (seq > head.seq) return null;
    return openJournal(this.#dir, head).positionAt(seq).hash;
  }

  newestSnapshot(head: Position): SourceSnapshot {
    const journal = openJournal(this.#dir, head);
    const base = nearestBaseState(journal, head.seq);
    const candidates = listDirectory(this.#dir).map((name) => SNAPSHOT_NAME.exec(name)).filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1])).filter((seq) => seq > base.seq && seq <= head.seq).sort((a, b) => b - a);
    for (const seq of candidates) {
      const entry = journal.entry(seq);
      if (entry.kind === 'resync' && entry.snapshot !== undefined) return { position: positionOf(head.journalId, seq, entry.hash), ref: entry.snapshot };
    }
    return { position: base.position, ref: base.ref };
  }

  register(name: string, position: Position): void {
    registerFollower(this.#dir, name, position);
  }

  pin(purpose: string): { release(): void } | null {
    return pinWhileReading(this.#dir, purpose);
  }

  copySnapshot(ref: SnapshotRef, targetPath: string): void {
    verifySnapshot(this.#dir, ref.file, ref.sha256, ref.size);
    io('copy snapshot', targetPath, () => copyFileSync(join(this.#dir, ref.file), targetPath));
    // Checked again after the copy: what was copied is what the journal names.
    verifySnapshot(dirname(targetPath), basename(targetPath), ref.sha256, ref.size);
  }

  async watch(wake: () => void): Promise<SourceWatch> {
    const watcher = watchFiles(this.#dir, { ignoreInitial: true, depth: 0, persistent: false, atomic: false });
    // 'raw' is the file system's own event (inotify: well under a millisecond); chokidar's 'change' is
    // confirmed by a stat and arrives 1-45 ms later (measured). Either only wakes the follower, and only
    // for the files that announce entries: the head marker and segments (not the writers' lock files).
    watcher.on('raw', (_event, path) => {
      if (announcesEntries(path)) wake();
    });
    watcher.on('all', (_event, path) => {
      if (announcesEntries(path)) wake();
    });
    watcher.on('error', () => undefined); // a hint only: the follower polls as well
    await new Promise<void>((resolveReady) => watcher.once('ready', () => resolveReady()));
    return { close: () => watcher.close() };
  }

  close(): void {
    this.#cursor = null;
    this.#heads?.close();
    this.#heads = null;
  }

  /** The kept cursor when it stands exactly at `from`; otherwise a new one resuming there. */
  #cursorAt(from: Position, to: Position, location: ByteLocation | undefined): JournalCursor {
    const kept = this.#cursor;
    if (kept !== null && kept.position.seq === from.seq && kept.position.hash === from.hash && kept.head.journalId === to.journalId) {
      kept.advance(to);
      return kept;
    }
    this.#cursor = openJournal(this.#dir, to).cursorAfter(from, location);
    return this.#cursor;
  }
}

/** Whether a change to this file may mean new committed entries (chokidar passes a path or a name). */
function announcesEntries(path: unknown): boolean {
  const name = basename(String(path));
  return name === HEAD_FILE || name.endsWith(SEGMENT_SUFFIX);
}

/** Resume tokens of this source: `<segment first seq>:<byte offset>` of the next frame. */
function formatLocation(location: ByteLocation | null): string | null {
  return location === null ? null : `${location.segment}:${location.offset}`;
}

function parseLocation(token: string | null | undefined): ByteLocation | undefined {
  const match = /^(\d{1,16}):(\d{1,16})$/.exec(token ?? '');
  return match === null ? undefined : { segment: Number(match[1]), offset: Number(match[2]) };
}

/**
 * A journal entry as the replica applies it. A class: an object literal with getters made two closures
 * per entry, and spreading the optional fields cost ~1 µs per entry (measured in a catch-up). The hash in
 * hex (0.7 µs) and the resume token are made when read: a batch reads only its last entry's.
 */
class LocalSourceEntry implements SourceEntry {
  readonly seq: number;
  readonly kind: ReplayEntry['kind'];
  readonly time: number;
  readonly changeset: Uint8Array;
  readonly rowids?: Uint8Array;
  readonly sql?: string;
  readonly snapshot?: SnapshotRef;
  readonly undoes?: number;
  readonly #entry: ReplayEntry;

  constructor(entry: ReplayEntry) {
    this.seq = entry.seq;
    this.kind = entry.kind;
    this.time = entry.time;
    this.changeset = entry.changeset;
    if (entry.rowids !== undefined) this.rowids = entry.rowids;
    if (entry.sql !== undefined) this.sql = entry.sql;
    if (entry.snapshot !== undefined) this.snapshot = entry.snapshot;
    if (entry.undoes !== undefined) this.undoes = entry.undoes;
    this.#entry = entry;
  }

  get hash(): string {
    return toHex(this.#entry.hash);
  }

  get resume(): string | null {
    return formatLocation(this.#entry.next);
  }
}
