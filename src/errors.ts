/**
 * The one error class of changetrail, with a closed set of codes.
 *
 * Every failure that comes from data (a corrupt file, a conflicting database, a lock held by another
 * process, a full disk) is a `ChangetrailError` whose `code` is one of {@link ErrorCode} and whose
 * `details` are typed per code, so `switch (err.code)` narrows `err.details`. Misuse of the API (a wrong
 * argument type, an async write body, a closed trail) is a `TypeError` or `RangeError` instead.
 */

/** Details carried by each error code. Adding a code is a deliberate API change. */
export interface ErrorDetails {
  /** Bytes given as a changeset or patchset do not follow SQLite's format. */
  CHANGESET_MALFORMED: { offset: number; reason: string };
  /** The operation is not defined for this kind of changeset (e.g. inverting a patchset). */
  CHANGESET_KIND_UNSUPPORTED: { operation: string; kind: 'changeset' | 'patchset' };
  /** Inputs to combine mix changesets and patchsets. */
  CHANGESET_KIND_MISMATCH: { index: number };
  /** The same table appears with a different column count or primary key in inputs to combine. */
  CHANGESET_SCHEMA_MISMATCH: { table: string; index: number };
  /** Applying a changeset met a row that differs from what the changeset expects. */
  CHANGESET_CONFLICT: {
    table?: string;
    conflict: string;
    seq?: number;
    /** The row concerned, `{ column: value }` (values as `valueToJson` prints them), when known. */
    key?: Record<string, null | number | string | { $blob: string } | { $textHex: string }>;
    /** Undo: the later entry that changed the row being restored. */
    laterSeq?: number;
  };
  /**
   * A value or schema cannot be rendered (e.g. a changeset table missing from the given schema). When the
   * schema names fewer columns than the changeset has, both counts are given.
   */
  CHANGESET_SCHEMA_UNKNOWN: { table: string; changesetColumnCount?: number; schemaColumnCount?: number };

  /** A journal file ends inside a frame: the writer was interrupted (incomplete, not invalid). */
  JOURNAL_TORN_TAIL: { file: string; offset: number; seq?: number };
  /** A frame, manifest, head or snapshot does not match its checksum (invalid data). */
  JOURNAL_CHECKSUM_MISMATCH: { file: string; offset: number; seq?: number };
  /** A journal file has a format version this library does not read. */
  JOURNAL_VERSION_UNSUPPORTED: { file: string; version: number; supported: number };
  /** A journal structure is not valid (bad magic, an out-of-range length, a body failing validation). */
  JOURNAL_MALFORMED: { file: string; offset: number; reason: string; seq?: number };
  /** Sequence numbers are not contiguous. */
  JOURNAL_GAP: { file: string; expectedSeq: number; foundSeq: number };
  /** An entry's prevHash does not equal the previous entry's hash: the journal was altered. */
  JOURNAL_CHAIN_BROKEN: { seq: number; file?: string };
  /** The database records committed entries that the journal does not hold (lost or deleted journal data). */
  JOURNAL_BEHIND_DATABASE: { databaseSeq: number; journalSeq: number; file?: string };
  /** The journal holds committed entries newer than the database (e.g. the database was restored from a backup). */
  DATABASE_BEHIND_JOURNAL: { databaseSeq: number; journalSeq: number; hint?: string };
  /** The journal directory belongs to another database (journal ids differ), or is missing for a tracked database. */
  JOURNAL_MISMATCH: { databaseJournalId: string | null; journalJournalId: string | null; reason: string };
  /** Only data writes can be undone; schema and resync entries cannot be inverted. */
  UNDO_UNSUPPORTED: {
    seq: number;
    kind: string;
    /** The virtual table undo cannot maintain row by row, when that is the reason. */
    table?: string;
    /** e.g. 'fts5-contentless', 'rtree', 'fts4', 'index changed directly'. */
    reason?: string;
  };
  /** A requested entry does not exist in the journal. */
  ENTRY_NOT_FOUND: { seq: number; headSeq: number };

  /** The admission lock could not be acquired in time. */
  LOCK_TIMEOUT: { holder: LockHolderSummary | null; waitedMs: number };
  /**
   * This process lost its admission (fenced): another writer was admitted after it. Raised by the database
   * fence (epochs set) or by the directory lock's heartbeat (epochs null, `reason` says what it found).
   */
  LOCK_COMPROMISED: {
    epoch: number | null;
    currentEpoch: number | null;
    currentHolder: string | null;
    ownerId?: string;
    reason?: 'lock-missing' | 'lock-foreign';
  };
  /** A lock was not broken because it is not provably stale. */
  LOCK_NOT_STALE: { holder: LockHolderSummary | null; reason: string };
  /** The database lives on a filesystem whose locks SQLite cannot trust (NFS, SMB, FUSE...). */
  UNSAFE_FILESYSTEM: { path: string; filesystem: string };

  /** DDL was executed inside `trail.write`; use `trail.migrate`. */
  SCHEMA_CHANGE_IN_WRITE: { statement?: string };
  /** A write touched a table that SQLite sessions cannot record. */
  TABLE_NOT_CAPTURABLE: { table: string; reason: string };
  /** A write left a row whose primary key is NULL, which sessions silently ignore. */
  NULL_PRIMARY_KEY: { table: string };
  /**
   * A statement was refused because of the kind of operation running on the connection: a write or schema
   * change outside `trail.write`/`trail.migrate` (mode 'idle') or inside `trail.read`, or transaction control
   * (BEGIN/COMMIT/ROLLBACK) inside an operation that owns the transaction. `action` is e.g. 'INSERT',
   * 'CREATE TABLE', 'COMMIT', 'PRAGMA user_version'.
   */
  STATEMENT_NOT_ALLOWED: { mode: 'idle' | 'read' | 'write' | 'migrate'; action: string; table?: string };
  /** The database was changed outside changetrail since the last admitted write. */
  FOREIGN_WRITE_DETECTED: { headSeq: number; evidence: string };

  /** A filesystem operation of the journal or lock failed (ENOSPC, EIO, EACCES...). Nothing was committed. */
  IO_ERROR: { operation: string; path: string; errno?: string };
  /** SQLite failed while running an admitted write (the transaction was rolled back). */
  SQLITE_ERROR: { operation: string; errcode?: number };
  /** Command-line arguments are wrong. */
  CLI_USAGE: { command: string; hint: string };
  /** A saved position names an entry the journal does not hold with that hash (another history, or a rewritten journal). */
  POSITION_MISMATCH: { seq: number; expectedHash: string; foundHash: string };
  /**
   * Replaying journal content was refused by the replay guard: a statement would reach outside the target
   * (ATTACH, load_extension, a write outside `main`, a connection-changing PRAGMA) or exceed a work bound.
   */
  REPLAY_REFUSED: { action: string; reason: string; seq?: number };
  /** The writer refused an entry that readers would reject (journal/FORMAT.md §6.2): nothing was committed. */
  ENTRY_INVALID: { field: string; reason: string };
  /** The CLI runs on a Node without the node:sqlite features changetrail needs (printed before anything loads). */
  NODE_UNSUPPORTED: { nodeVersion: string; required: string };
  /**
   * A journal file is not a regular file (a symlink, a directory, a device...). Journal files are opened
   * without following symlinks, so a planted link cannot redirect writes to another file.
   */
  JOURNAL_FILE_UNEXPECTED: { path: string; found: 'symlink' | 'directory' | 'other' };
  /**
   * A reading command (opened read-only) found state that only a writer may repair: a hot rollback journal
   * of a crashed writer. Nothing was changed; the next write (or any read-write open) repairs it.
   */
  RECOVERY_NEEDED: { path: string; reason: string };
  /**
   * A reading connection waited its whole busy timeout for SQLite's lock on the database: another
   * connection held it (in rollback-journal mode a writer that is committing, or one paused or stopped
   * while it holds the lock, blocks every reader). Nothing was read or changed; retry.
   */
  DATABASE_BUSY: { path: string; waitedMs: number; operation: string };
  /** The path given as a database is not one: missing (for a command that reads), a directory, or a file that is not SQLite. */
  NOT_A_DATABASE: { path: string; reason: 'missing' | 'directory' | 'not a SQLite database' };
  /**
   * `changesetToSql` cannot write a statement on one line: an identifier holds a control character
   * (newline, ESC...), which SQL has no escape for.
   */
  SQL_IDENTIFIER_UNSUPPORTED: { identifier: string; table: string };

  /**
   * A replica file was changed by something other than its follower since the follower's last commit (its
   * change counter moved, or another connection committed while the follower held it open).
   */
  REPLICA_FOREIGN_WRITE: { replica: string; appliedSeq: number; evidence: string };
  /**
   * The replica follows another history than the source offers: the source's journal id differs from
   * the one the replica recorded (the source journal was swapped or recreated).
   */
  REPLICA_SOURCE_MISMATCH: { replica: string; replicaJournalId: string; sourceJournalId: string };
  /**
   * The replica's recorded position is not in the source's history: the journal's entry at that seq has
   * another hash, or the journal ends before it.
   */
  REPLICA_DIVERGED: { replica: string; seq: number; replicaHash: string; journalHash: string | null; sourceHeadSeq: number };
  /** The target file exists and is not a replica of this journal; it is left alone unless forced. */
  REPLICA_NOT_A_REPLICA: { replica: string; reason: string };
  /** `replica.waitFor(seq)` gave up: entry `seq` was not applied within `timeoutMs`. */
  REPLICA_WAIT_TIMEOUT: { replica: string; seq: number; appliedSeq: number; timeoutMs: number };
  /** A position (seq, hash prefix or @time) names no committed entry. */
  POSITION_NOT_FOUND: { spec: string; headSeq: number };
  /** A hash prefix matches more than one entry (`matches`: the first of their seqs). */
  POSITION_AMBIGUOUS: { spec: string; matches: number[] };
  /**
   * An export range holds an entry the format cannot express: a schema entry for `changeset`/`patchset`, or
   * a resync entry (a snapshot, not rows) for any format. `hint` says how to proceed.
   */
  EXPORT_RANGE_UNSUPPORTED: { seq: number; kind: 'schema' | 'resync'; format: string; hint: string };
  /** An output file (restore, backup, export -o) already exists and overwriting was not asked for. */
  OUTPUT_EXISTS: { path: string };
  /** A stamped backup does not belong to this journal, or its stamp does not match the journal's entry. */
  BACKUP_MISMATCH: { path: string; reason: string; seq?: number };
  /** `PRAGMA integrity_check` of a restored database reported problems (nothing was written to the output). */
  INTEGRITY_CHECK_FAILED: { path: string; problems: string[] };

  /** A signed note (signed head) does not follow the C2SP signed-note / checkpoint shape. */
  SIGNED_NOTE_MALFORMED: { reason: string };
  /** The note carries no valid Ed25519 signature by the given key. */
  SIGNATURE_INVALID: { keyName: string; keyId: string };
  /**
   * The journal does not contain the signed head: another journal (`other-journal`), fewer entries than
   * the signed size (`truncated`: history rolled back), or another entry at that seq (`rewritten`).
   */
  SIGNED_HEAD_MISMATCH: { seq: number; signedHash: string; journalHash: string | null; headSeq: number; reason: 'other-journal' | 'truncated' | 'rewritten' };
  /** A signing or verifying key file cannot be used (unreadable, not Ed25519, malformed). */
  SIGNING_KEY_INVALID: { path: string; reason: string };
  /**
   * An optimistic write gave up: something its plan declared as read was changed by entry `seq` after the
   * plan's position `plannedAt`. `table`/`key` name the row (key in PRIMARY KEY order) or table; both are
   * null for a schema change or resync, and `sql` names a declared query whose result changed.
   */
  OPTIMISTIC_CONFLICT: {
    table: string | null;
    key: (null | number | string | { $blob: string } | { $textHex: string })[] | null;
    seq: number;
    reason: 'row-changed' | 'table-changed' | 'query-changed' | 'schema-changed' | 'resync';
    sql?: string;
    plannedAt: number;
    attempts: number;
  };
  /**
   * The entry (or the state after it) was pruned: retained history begins at `earliestSeq`, whose base
   * state is checkpoint `checkpointSeq`'s snapshot (the state as of `baseSeq` = `earliestSeq` - 1).
   */
  HISTORY_PRUNED: { seq: number; earliestSeq: number; baseSeq: number; checkpointSeq: number };
  /** Pruning needs a checkpoint at or before the requested point, and the journal has none. */
  CHECKPOINT_NOT_FOUND: { before: number; headSeq: number };
  /** No NATS server answered (connect, publish ack, stream read): transient, retried with backoff where a loop runs. */
  NATS_UNAVAILABLE: { server: string; operation: string; reason: string };
  /** Another shipper publishes to the stream (it answered the claim, or the stream's last sequence moved under this one). */
  NATS_STREAM_FENCED: { stream: string; reason: string; seq?: number; holder?: string };
  /**
   * The stream holds another history than the local journal: another journal, a different entry at `seq`,
   * entries past the journal's head, a message that is no changetrail entry, or a last message removed by limits.
   */
  NATS_STREAM_MISMATCH: {
    stream: string;
    reason: 'other-journal' | 'diverged' | 'ahead' | 'not-changetrail' | 'unverifiable';
    seq: number | null;
    streamHash: string | null;
    journalHash: string | null;
  };
  /** An object the stream refers to (manifest, snapshot, large frame) is not in the Object Store bucket. */
  NATS_OBJECT_MISSING: { bucket: string; name: string };
}

/** The closed set of error codes. */
export type ErrorCode = keyof ErrorDetails;

/** What is known of a lock holder, as shown in errors and `inspectLock()`. */
export interface LockHolderSummary {
  ownerId: string;
  host: string;
  pid: number;
  ageMs: number | null;
}

/** Every code of the closed set, in no particular order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze([
  'CHANGESET_MALFORMED', 'CHANGESET_KIND_UNSUPPORTED', 'CHANGESET_KIND_MISMATCH', 'CHANGESET_SCHEMA_MISMATCH',
  'CHANGESET_CONFLICT', 'CHANGESET_SCHEMA_UNKNOWN', 'JOURNAL_TORN_TAIL', 'JOURNAL_CHECKSUM_MISMATCH',
  'JOURNAL_VERSION_UNSUPPORTED', 'JOURNAL_MALFORMED', 'JOURNAL_GAP', 'JOURNAL_CHAIN_BROKEN',
  'JOURNAL_BEHIND_DATABASE', 'DATABASE_BEHIND_JOURNAL', 'JOURNAL_MISMATCH', 'UNDO_UNSUPPORTED', 'ENTRY_NOT_FOUND', 'LOCK_TIMEOUT',
  'LOCK_COMPROMISED', 'LOCK_NOT_STALE', 'UNSAFE_FILESYSTEM', 'SCHEMA_CHANGE_IN_WRITE', 'TABLE_NOT_CAPTURABLE',
  'NULL_PRIMARY_KEY', 'STATEMENT_NOT_ALLOWED', 'FOREIGN_WRITE_DETECTED', 'IO_ERROR', 'SQLITE_ERROR', 'CLI_USAGE',
  'POSITION_MISMATCH', 'REPLAY_REFUSED', 'ENTRY_INVALID',
  'NODE_UNSUPPORTED', 'JOURNAL_FILE_UNEXPECTED', 'RECOVERY_NEEDED', 'NOT_A_DATABASE', 'SQL_IDENTIFIER_UNSUPPORTED',
  'REPLICA_FOREIGN_WRITE', 'REPLICA_SOURCE_MISMATCH', 'REPLICA_DIVERGED', 'REPLICA_NOT_A_REPLICA', 'REPLICA_WAIT_TIMEOUT',
  'POSITION_NOT_FOUND', 'POSITION_AMBIGUOUS', 'EXPORT_RANGE_UNSUPPORTED', 'OUTPUT_EXISTS', 'BACKUP_MISMATCH', 'INTEGRITY_CHECK_FAILED',
  'SIGNED_NOTE_MALFORMED', 'SIGNATURE_INVALID', 'SIGNED_HEAD_MISMATCH', 'SIGNING_KEY_INVALID',
  'OPTIMISTIC_CONFLICT', 'HISTORY_PRUNED', 'CHECKPOINT_NOT_FOUND',
  'NATS_UNAVAILABLE', 'NATS_STREAM_FENCED', 'NATS_STREAM_MISMATCH', 'NATS_OBJECT_MISSING',
  'DATABASE_BUSY',
] satisfies ErrorCode[]);
const CODES = new Set<string>(ERROR_CODES);

/** True when `code` is one of the closed set (used when errors cross a process boundary as JSON). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

/** The error class of changetrail. `code` is stable; the message is for people and may change. */
export class ChangetrailError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: ErrorDetails[C];

  constructor(code: C, message: string, details: ErrorDetails[C], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChangetrailError';
    this.code = code;
    this.details = details;
  }

  /** Narrows an unknown error to a `ChangetrailError`, optionally of one code. */
  static is<C extends ErrorCode>(error: unknown, code?: C): error is ChangetrailError<C> {
    return error instanceof ChangetrailError && (code === undefined || error.code === code);
  }

  toJSON(): { name: string; code: C; message: string; details: ErrorDetails[C] } {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}
