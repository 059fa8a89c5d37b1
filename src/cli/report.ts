/**
 * How a failure reaches a CLI user: `changetrail: CODE: message` and a `hint:` line naming the command
 * that helps (never an API call), or `{"error": {code, message, details, hint}}` with --json.
 * Exit codes: 1 a ChangetrailError, 2 wrong usage (CLI_USAGE, TypeError, RangeError), 70 internal error.
 */
import { ChangetrailError, type ErrorCode } from '../errors.js';
import { escapeControl } from './format.js';
import { toJson, type Output } from './output.js';

type Hint = (db: string, error: ChangetrailError) => string;

const DAMAGED: Hint = (db) =>
  `the journal (${db}.changes/) is damaged or was altered; restore it from a backup. \`changetrail verify ${db}\` names the first bad entry`;

const REPLICA_START_OVER = 'its rows can no longer be trusted to equal the primary\'s: start it over with `changetrail replicate <source> <replica.db> --rebuild`';

/** What to do next, per code (every code but CLI_USAGE, whose message says it); `<db>` is the database the command was given. */
const HINTS: Record<Exclude<ErrorCode, 'CLI_USAGE'>, Hint> = {
  CHANGESET_MALFORMED: (db) => `the changeset bytes are damaged; if they came from ${db}.changes/, \`changetrail verify ${db}\` names the bad entry`,
  CHANGESET_KIND_UNSUPPORTED: () => 'this needs a changeset, not a patchset (or the other way round): export with the matching --format',
  CHANGESET_KIND_MISMATCH: () => 'changesets and patchsets cannot be mixed: give inputs of one kind',
  CHANGESET_SCHEMA_MISMATCH: () => 'the changesets disagree on a table\'s columns or key (a migration between them?): combine only changesets of one schema',
  CHANGESET_SCHEMA_UNKNOWN: (db) => `the changeset names a table or column count the schema does not have; \`changetrail verify ${db} --replay\` checks the journal against the database`,
  SQLITE_ERROR: () => 'SQLite refused the statement (see its message: a missing table or column, a constraint, a syntax error); nothing was committed',
  POSITION_MISMATCH: () => 'the saved position belongs to another history (another journal, or one rewritten since): start over from a full copy',
  SQL_IDENTIFIER_UNSUPPORTED: () => 'a table or column name holds characters a sqlite3 shell script cannot carry safely: export with --format ndjson or changeset',
  REPLICA_FOREIGN_WRITE: () => `something other than its follower wrote the replica; ${REPLICA_START_OVER}`,
  REPLICA_SOURCE_MISMATCH: () => 'the source now holds another journal: check the source path; to follow the new one, replace the replica with `changetrail replicate <source> <replica.db> --force`',
  REPLICA_DIVERGED: () => `the replica's position is not in the source's history; ${REPLICA_START_OVER}`,
  REPLICA_NOT_A_REPLICA: () => 'give a new path for the replica, or add --force to replace this file (its content is lost)',
  REPLICA_WAIT_TIMEOUT: () => 'the replica did not reach the entry in time: `changetrail status <replica.db>` shows its lag',
  EXPORT_RANGE_UNSUPPORTED: (_db, error) => {
    const hint = (error.details as { hint?: string }).hint;
    return hint !== undefined && !error.message.includes(hint) ? hint : 'split the range at that entry: --until before it, then continue from it';
  },
  OUTPUT_EXISTS: () => 'choose another output path, or add --force to replace the file',
  BACKUP_MISMATCH: (db) => `give a backup of ${db} taken at or before the point asked for (\`changetrail backup ${db} <file>\` makes one)`,
  INTEGRITY_CHECK_FAILED: (db) => `the file built failed PRAGMA integrity_check and was not kept; \`changetrail verify ${db} --replay\` checks the journal`,
  SIGNED_NOTE_MALFORMED: () => 'give the file `changetrail sign` printed, unchanged, to --signed',
  OPTIMISTIC_CONFLICT: () => 'other writers kept changing what the plan read: retry later, allow more retries, or decide inside the lock with a plain write',
  FOREIGN_WRITE_DETECTED: (db) => `the database was changed outside changetrail. Check the change, then record the database as it is now with \`changetrail resync ${db}\``,
  LOCK_TIMEOUT: (db) => `another process is writing. \`changetrail status ${db}\` shows the holder; \`changetrail unlock ${db}\` breaks the lock only if that process is gone`,
  LOCK_NOT_STALE: () => 'the holder is alive; wait for it to finish, or stop it first',
  LOCK_COMPROMISED: () => 'another writer was admitted while this one waited; nothing was committed by this command: run it again',
  JOURNAL_MISMATCH: (db) =>
    `restore ${db}.changes/ from a backup of the same time as the database. To start a new history on purpose (the old one is not kept), move ${db}.changes/ aside if it exists and run \`changetrail init ${db} --new-history\``,
  JOURNAL_BEHIND_DATABASE: (db) => `committed entries are missing from ${db}.changes/; restore it from a backup`,
  DATABASE_BEHIND_JOURNAL: (db) =>
    `the database is older than its journal (restored from a backup?): \`changetrail recover ${db}\` replays the missing entries exactly and loses nothing`,
  JOURNAL_CHECKSUM_MISMATCH: DAMAGED,
  JOURNAL_CHAIN_BROKEN: DAMAGED,
  JOURNAL_MALFORMED: DAMAGED,
  JOURNAL_GAP: DAMAGED,
  JOURNAL_TORN_TAIL: DAMAGED,
  JOURNAL_VERSION_UNSUPPORTED: () => 'this journal was written by a newer changetrail; upgrade changetrail to read it',
  SCHEMA_CHANGE_IN_WRITE: (db) => `schema changes go through \`changetrail migrate ${db} <file.sql>\``,
  STATEMENT_NOT_ALLOWED: (db) => `run writes with \`changetrail exec ${db} "<sql>"\` and schema changes with \`changetrail migrate ${db} <file.sql>\`; transaction control is changetrail's`,
  CHANGESET_CONFLICT: (db) => `later entries changed the same rows: \`changetrail log ${db}\` lists them; undo those first (newest first)`,
  SIGNED_HEAD_MISMATCH: (db, error) => {
    const reason = (error.details as { reason?: string }).reason;
    if (reason === 'other-journal') return `the note signs another journal; check that it belongs to ${db}`;
    return `the journal no longer contains the signed head (history ${reason === 'truncated' ? 'rolled back' : 'rewritten'} since it was signed); restore ${db} and ${db}.changes/ from a backup taken before`;
  },
  SIGNATURE_INVALID: () => 'the note is not signed by that key, or was altered; check --key (a PEM public key or a C2SP verifier key)',
  SIGNING_KEY_INVALID: () => 'give an Ed25519 key in PEM (openssl genpkey -algorithm ed25519), or make one with `changetrail sign --generate-key <file>`',
  UNDO_UNSUPPORTED: (db, error) => {
    const { kind, reason } = error.details as { kind?: string; reason?: string };
    if (kind === 'schema' || kind === 'resync' || reason === undefined) return 'only data writes can be undone; reverse a migration with another migration';
    return `this entry cannot be reversed row by row (${reason}); write the change you want as a new entry with \`changetrail exec ${db} "<sql>"\``;
  },
  HISTORY_PRUNED: (db, error) => `history before entry ${(error.details as { earliestSeq?: number }).earliestSeq ?? '?'} was pruned; ask for a later point (\`changetrail retention ${db}\` shows what is retained), or restore an older backup`,
  CHECKPOINT_NOT_FOUND: (db) => `take a checkpoint first: \`changetrail checkpoint ${db}\``,
  ENTRY_NOT_FOUND: (db) => `\`changetrail log ${db}\` lists the entries`,
  POSITION_NOT_FOUND: (db) => `\`changetrail log ${db} --oneline\` lists the entries (seq and hash); a point is a seq, a hash prefix or @<time>`,
  POSITION_AMBIGUOUS: () => 'the hash prefix names more than one entry: give more hex digits',
  UNSAFE_FILESYSTEM: () => 'move the database to a local filesystem',
  JOURNAL_FILE_UNEXPECTED: (db) => `a journal file in ${db}.changes/ was replaced by a link or a special file: someone tampered with the journal. Investigate, then restore the journal from a backup`,
  RECOVERY_NEEDED: (db) => `a writer crashed mid-write. Any write rolls it back: run \`changetrail exec ${db} "SELECT 1"\` (changes nothing) as a user who can write the database, then read again`,
  NOT_A_DATABASE: () => 'give the path of a SQLite database file',
  DATABASE_BUSY: () => 'another process held SQLite\'s lock on the database for the whole busy timeout (a writer committing a large change, or one paused while it holds the lock): retry; `fuser` or `lsof` shows who has the file open',
  NODE_UNSUPPORTED: () => 'install Node 24 LTS (https://nodejs.org)',
  REPLAY_REFUSED: (db) => `the journal holds SQL that reaches outside its database: treat ${db}.changes/ as tampered with, and restore it from a backup`,
  ENTRY_INVALID: () => 'nothing was committed: the message, actor or meta holds something the journal cannot store (see the message)',
  TABLE_NOT_CAPTURABLE: () => 'changetrail records tables with a PRIMARY KEY (or rowid tables); give the table one with a migration',
  NULL_PRIMARY_KEY: () => 'primary key columns must not be NULL (declare them NOT NULL)',
  NATS_UNAVAILABLE: () => 'check that nats-server runs with JetStream enabled (-js) and is reachable, and the address, credentials and TLS flags (NATS_URL names the servers of nats:///<name>)',
  NATS_STREAM_FENCED: (_db, error) => (error.details as { reason?: string }).reason === 'another shipper is active'
    ? 'one shipper per stream: stop the other `changetrail ship` first (its host and pid are in the message), or ship to another stream name'
    : 'another shipper wrote to the stream meanwhile; stop it, then run `changetrail ship` again (it resumes after the stream\'s last entry)',
  NATS_STREAM_MISMATCH: (db) => `the stream belongs to another history than ${db}; ship to a new stream name, or if this primary is the right one, move the old stream aside (nats stream rm) deliberately`,
  NATS_OBJECT_MISSING: () => 'nothing was shipped to this name yet, or the Object Store bucket <name>-files was removed: run `changetrail ship <db> nats://…/<name>` first',
  IO_ERROR: (_db, error) => {
    const errno = (error.details as { errno?: string }).errno;
    if (errno === 'EACCES' || errno === 'EPERM') return 'check the permissions of the database, its directory and its journal directory';
    if (errno === 'ENOSPC') return 'the disk is full; free space and run the command again (nothing was committed)';
    return 'check the path and the disk; nothing was committed';
  },
};

/** The CLI command for each Trail method a library message may name. */
const API_TO_COMMAND: Record<string, (db: string) => string> = {
  resync: (db) => `\`changetrail resync ${db}\``,
  migrate: (db) => `\`changetrail migrate ${db} <file.sql>\``,
  write: (db) => `\`changetrail exec ${db}\``,
  undo: (db) => `\`changetrail undo ${db} <seq>\``,
  verify: (db) => `\`changetrail verify ${db}\``,
};

/** Options of a Trail method a library message may name, as the CLI flag that sets them. */
const API_OPTION_TO_FLAG: Record<string, string> = { 'ifChanged: true': '--if-changed', 'replay: true': '--replay' };

/**
 * A library message as a CLI user needs it: "trail.resync()" becomes "`changetrail resync app.db`",
 * "trail.resync({ ifChanged: true })" "`changetrail resync app.db --if-changed`", and
 * "trail.write/trail.migrate" "`changetrail exec app.db`/`changetrail migrate app.db <file.sql>`".
 */
export function cliMessage(message: string, db: string | undefined): string {
  const named = db === undefined ? message : message.replaceAll(/(changetrail \w+) <db>/g, (_text, command: string) => `${command} ${db}`);
  return named.replace(/\btrail\.(\w+)(?:\((?:\{ ([^}]*) \})?\))?/g, (text, method: string, options: string | undefined) => {
    const command = API_TO_COMMAND[method]?.(db ?? '<db>');
    if (command === undefined) return text;
    if (options === undefined) return command;
    const flags = options.split(', ').map((option) => API_OPTION_TO_FLAG[option]);
    return flags.every((flag) => flag !== undefined) ? `${command.slice(0, -1)} ${flags.join(' ')}\`` : text;
  });
}

/** The hint for an error, or null. */
export function hintFor(error: ChangetrailError, db: string | undefined): string | null {
  if (error.code === 'CLI_USAGE') return null; // its message already says what to do
  const hint = HINTS[error.code] as Hint | undefined;
  return hint === undefined ? null : hint(db ?? '<db>', error);
}

/** Prints `error` for a CLI user and returns the exit code. */
export function reportError(error: unknown, out: Output, db: string | undefined): number {
  if (error instanceof ChangetrailError) {
    const hint = hintFor(error, db);
    const message = cliMessage(error.message, db);
    if (out.json) out.notice(toJson({ error: { ...error.toJSON(), message, ...(hint === null ? {} : { hint }) } }));
    else out.notice(`changetrail: ${error.code}: ${escapeControl(message)}${hint === null ? '' : `\nhint: ${escapeControl(hint)}`}`);
    return error.code === 'CLI_USAGE' ? 2 : 1;
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    if (out.json) out.notice(toJson({ error: { name: error.name, code: 'CLI_USAGE', message: error.message } }));
    else out.notice(`changetrail: CLI_USAGE: ${escapeControl(error.message)}`);
    return 2;
  }
  const sqlite = error as { code?: string; errcode?: number; message?: string };
  if (sqlite?.code === 'ERR_SQLITE_ERROR') {
    return reportError(new ChangetrailError('SQLITE_ERROR', String(sqlite.message), { operation: 'sqlite', ...(sqlite.errcode === undefined ? {} : { errcode: sqlite.errcode }) }), out, db);
  }
  out.notice(`changetrail: internal error (please report it): ${(error as Error)?.stack ?? String(error)}`);
  return 70;
}
