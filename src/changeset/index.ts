/**
 * `changetrail/changeset`: a pure-TypeScript codec for SQLite session changesets and patchsets. No
 * Node.js APIs: it runs wherever `Uint8Array`, `DataView` and `TextDecoder` exist.
 */
export { decodeChangeset, iterateChangeset } from './decode.js';
export type { GroupChange } from './decode.js';
export { encodeChangeset } from './encode.js';
export { invertChangeset } from './invert.js';
export { combineChangesets } from './combine.js';
export { filterChangeset } from './filter.js';
export type { ChangesetFilter } from './filter.js';
export { summarizeChangeset } from './summarize.js';
export type { TableSummary } from './summarize.js';
export { SqlText } from './sql-text.js';
export type { Change, ChangeOp, Changeset, ChangesetKind, Field, TableChanges, Value } from './types.js';
export { changesetToRows } from './rows.js';
export type { ChangesetSchema, RowChange, RowValues } from './rows.js';
export { changesetToSql, formatSqlValue, quoteIdentifier } from './sql.js';
export { valueToJson, rowChangeToJson } from './json.js';
export type { JsonFieldValue, RowChangeJson } from './json.js';
