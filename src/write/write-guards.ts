/**
 * The checks around every admitted write that keep anything from escaping the journal: the capture guard
 * (SQLite's authorizer: no DDL in a write, no writes to tables sessions cannot record, no NULL keys, no
 * writes outside an admitted write), and no changes made outside changetrail since the last admitted write
 * (foreign writes), detected from inside the write transaction.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { createSchemaReader, type DatabaseSchema } from '../apply/schema.js';
import { quoteIdentifier } from '../apply/sql-identifier.js';
import { ChangetrailError } from '../errors.js';
import { installCaptureGuard, type CaptureGuard } from './capture-guard.js';
import type { CommitGuards, CommitRequest } from './commit.js';
import type { HeadRow } from './head-row.js';

interface Observation {
  dataVersion: number;
  seq: number;
  epoch: number;
}

export class WriteGuards implements CommitGuards {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #dataVersion: StatementSync;
  readonly #capture: CaptureGuard;
  readonly #readSchema: () => DatabaseSchema;
  #connectedSchemaVersion: number | null = null;
  /** What this connection last saw of the database: `PRAGMA data_version` changes only for other connections' commits. */
  #seen: Observation | null = null;

  constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#path = path;
    this.#readSchema = createSchemaReader(db);
    this.#capture = installCaptureGuard(db, this.#readSchema);
    this.#dataVersion = this.#capture.run('internal', () => db.prepare('PRAGMA data_version'));
  }

  /** Runs changetrail's own statements (transaction control, the head row). */
  internal<T>(fn: () => T): T {
    return this.#capture.run('internal', fn);
  }

  runBody(request: CommitRequest, db: DatabaseSync): unknown {
    return this.#capture.run(request.kind === 'schema' ? 'migrate' : request.bodyMode ?? 'write', () => request.run(db));
  }

  beforeBody(head: HeadRow, request: CommitRequest, changeCounter: number | null, dataVersion: number): void {
    // A resync records the database as it is, foreign changes included: that is its purpose.
    if (request.kind === 'resync') {
      this.#seen = null;
      return this.#checkForeignWrites(head, dataVersion);
    }
    if (changeCounter !== null && head.changeCounter !== null) {
      if (changeCounter !== head.changeCounter) {
        throw new ChangetrailError('FOREIGN_WRITE_DETECTED',
          `write: ${this.#path} was changed outside changetrail after entry ${head.seq} (its change counter is ${changeCounter}, changetrail's last commit left ${head.changeCounter}); ` +
          'those changes are not in the journal. Record the current state with trail.resync() before writing again ' +
          '(if only VACUUM, ANALYZE or PRAGMA optimize ran, trail.resync({ ifChanged: true }) acknowledges it without a snapshot).',
          { headSeq: head.seq, evidence: 'the database file\'s change counter moved without a changetrail commit' });
      }
      // The counter is the stronger evidence: every commit bumps it, and rolling back a crashed writer's hot
      // journal restores it, where it moves data_version (issue 8 item 4). data_version is only recorded.
      this.#seen = { dataVersion, seq: head.seq, epoch: head.epoch };
      return;
    }
    this.#checkForeignWrites(head, dataVersion);
  }

  afterCommit(head: HeadRow): void {
    // This connection's own commits do not change its data_version: the value read before the body stands.
    if (this.#seen !== null) this.#seen = { dataVersion: this.#seen.dataVersion, seq: head.seq, epoch: head.epoch };
    else this.observe(head);
  }

  /** Records the state this connection has seen (at open and after each of its commits). */
  observe(head: HeadRow): void {
    this.#seen = { dataVersion: this.#readDataVersion(), seq: head.seq, epoch: head.epoch };
  }

  /** Runs a read-only body in a read transaction; any write it attempts is refused. */
  runRead<T>(db: DatabaseSync, fn: (db: DatabaseSync) => T): T {
    return this.internal(() => {
      db.exec('BEGIN');
      try {
        this.#connectVirtualTables();
        const result = this.#capture.run('read', () => fn(db));
        db.exec('COMMIT');
        return result;
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  uninstall(): void {
    this.#capture.uninstall();
  }

  /**
   * Virtual-table modules prepare their shadow-table writes when they connect, once per connection and
   * schema — R*Tree even for a plain read, which a read would then be refused for. Connecting them here,
   * in 'internal' mode, whenever the schema changed, keeps reads of R*Tree and FTS tables working; their
   * write statements are re-checked in the mode in which they next run.
   */
  #connectVirtualTables(): void {
    const schema = this.#readSchema();
    if (schema.schemaVersion === this.#connectedSchemaVersion) return;
    for (const table of schema.tables) {
      if (table.isVirtual) this.#db.prepare(`SELECT 1 FROM main.${quoteIdentifier(table.name)} LIMIT 0`);
    }
    this.#connectedSchemaVersion = schema.schemaVersion;
  }

  /**
   * Another connection committed (data_version moved) while the head row did not move: those changes were
   * not admitted through changetrail. Changes made between two other changetrail writers' commits are not
   * visible to this check; `changetrail verify` compares the replayed journal with the database.
   */
  #checkForeignWrites(head: HeadRow, dataVersion: number): void {
    const seen = this.#seen;
    if (seen !== null && seen.dataVersion !== dataVersion && seen.seq === head.seq && seen.epoch === head.epoch) {
      // #seen stays as it was: every write is refused until the foreign changes are recorded (resync).
      throw new ChangetrailError('FOREIGN_WRITE_DETECTED',
        `write: ${this.#path} was changed outside changetrail after entry ${head.seq}; those changes are not in the journal. ` +
        'Record the current state with trail.resync() (a resync entry carrying a fresh snapshot) before writing again.',
        { headSeq: head.seq, evidence: 'data_version changed while the journal head did not' });
    }
    this.#seen = { dataVersion, seq: head.seq, epoch: head.epoch };
  }

  #readDataVersion(): number {
    return Number(this.#dataVersion.get()?.data_version);
  }
}
