/**
 * changetrail: every admitted write to an ordinary SQLite file recorded as a journal entry beside it —
 * replayable, auditable and reversible. The changeset codec is also available on its own, without Node
 * built-ins, as `changetrail/changeset`.
 */
export { ChangetrailError, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorDetails, LockHolderSummary } from './errors.js';
export { openTrail, Trail } from './write/trail.js';
export { openTrailReader, TrailReader } from './write/read-only.js';
export type { TrailReaderOptions, ReaderVerifyOptions } from './write/read-only.js';
export type { OpenTrailOptions, WriteOptions, EntriesOptions, TrailStatus, VerifyReport, UndoPreview } from './write/trail.js';
export type { KeyValue, ReadDeclaration, OptimisticPlan, OptimisticResult, OptimisticWriteOptions } from './write/optimistic.js';
export type { UndoConflict, UndoReport, DerivedTreatment } from './apply/undo.js';
export type { Entry, EntryWithChangeset } from './write/entry-view.js';
export type { EntryKind, JsonValue, TableCounts } from './journal/entry.js';
export { formatPosition, parsePosition, positionsEqual } from './journal/position.js';
export type { Position } from './journal/position.js';
export { inspectLock, breakStaleLock } from './admission/lock.js';
export type { LockInspection } from './admission/lock.js';
export { openReplica, Replica } from './replica/replica.js';
export type { OpenReplicaOptions, ReplicaStatus, ReplicaState, ReplicaProgress, ReplicaEvents } from './replica/replica.js';
export type { HeadWait, ReplicaSource, SourceEntry, SourceSnapshot, SourceWatch } from './replica/source.js';
export { shipJournal } from './replica/nats-ship.js';
export type { ShipOptions, ShipStatus, ShipState, Shipper } from './replica/nats-ship.js';
export { natsSource } from './replica/nats-source.js';
export type { NatsSourceOptions, NatsSourceStatus, NatsReplicaSource } from './replica/nats-source.js';
export type { NatsEvent, NatsOptions } from './replica/nats-address.js';
export { exportChanges } from './export/export-changes.js';
export type { ExportOptions, ExportStream } from './export/export-changes.js';
export type { ExportFormat } from './export/export-format.js';
export { parseExportLine } from './export/value-json.js';
export type { PositionSpec, ResolvedPosition } from './export/resolve-position.js';
export { restoreTo } from './export/restore.js';
export type { RestoreOptions, RestoreResult, RestoreProgress } from './export/restore.js';
export { backup, readBackupStamp } from './export/backup.js';
export type { BackupOptions, BackupStamp } from './export/backup.js';
export { rowHistory } from './audit/history.js';
export type { HistoryStep, RowRef } from './audit/history.js';
export { blame } from './audit/blame.js';
export type { BlameEntry, BlameLine, BlameOptions } from './audit/blame.js';
export { filterLog } from './audit/log-filter.js';
export type { LogFilter } from './audit/log-filter.js';
export { diffPoints } from './audit/diff.js';
export type { DiffOptions, DiffResult, TableDiffStat } from './audit/diff.js';
export type { RowDifference } from './audit/state-compare.js';
export type { AuditOptions } from './audit/audit-source.js';
export type { IndexMode } from './audit/audit-index.js';
export { signCommittedHead, verifySignedHead } from './audit/signed-head.js';
export type { SignedHeadReport } from './audit/signed-head.js';
export { readSigningKey, readVerifierKey, generateSigningKey, formatVerifierKey, parseSignedNote } from './audit/signed-note.js';
export type { SigningKey, VerifierKey, ParsedNote, Checkpoint, NoteSignature } from './audit/signed-note.js';
export { registerFollower, unregisterFollower, listFollowers } from './journal/retention-pins.js';
export type { FollowerRecord } from './journal/retention-pins.js';
export type { RetainedBase } from './journal/retention-base.js';
export type { CheckpointOptions, CheckpointResult } from './write/checkpoint.js';
export type { PruneOptions, PruneResult, PruneHold, FollowerHoldLimits } from './write/prune.js';
