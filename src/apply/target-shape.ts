/**
 * The shape check that SQLite's apply does silently: a changeset table that is missing from the target,
 * has fewer columns there or another PRIMARY KEY is skipped without any error (reference §4.1 step 3,
 * Appendix A). An exact apply refuses such a changeset instead, naming the table.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import type { ChangesetTable } from './changeset-tables.js';
import { bytesEqual } from './changeset-tables.js';
import { foldName } from './schema.js';

/** Why a changeset table does not fit the target (`details.conflict` of CHANGESET_CONFLICT). */
export type ShapeConflict = 'NO_SUCH_TABLE' | 'COLUMN_COUNT' | 'PRIMARY_KEY';

/** A target table that fits its changeset table. */
export interface TargetTable {
  /** The name as spelled in the target's schema. */
  readonly name: string;
  /** A shadow table of a virtual table (FTS5 `ft_data`, R*Tree `rt_node`, ...). */
  readonly isShadow: boolean;
}

const STAT1_PK = Uint8Array.of(1, 2, 0);

/**
 * Checks every table of the changeset against `main` of the target: it must be an ordinary or shadow
 * table with exactly the changeset's number of recorded (non-hidden) columns and the same pk bytes.
 * A target with more columns is refused too: SQLite would fill them with DEFAULT values, which is not the
 * source's row.
 *
 * @throws ChangetrailError CHANGESET_CONFLICT with `details.conflict` one of {@link ShapeConflict}.
 */
export function checkTargetShapes(db: DatabaseSync, tables: readonly ChangesetTable[], seq: number | undefined): TargetTable[] {
  const listStatement = db.prepare(`SELECT name, type FROM pragma_table_list(?) WHERE schema = 'main'`);
  const columnStatement = db.prepare(`SELECT pk FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid`);
  return tables.map((table) => {
    const listed = listStatement.get(table.name) as { name: string; type: string } | undefined;
    if (listed === undefined || (listed.type !== 'table' && listed.type !== 'shadow')) throw shapeConflict(table, 'NO_SUCH_TABLE', seq);
    const pks = (columnStatement.all(listed.name) as { pk: number }[]).map((row) => row.pk);
    if (pks.length !== table.columnCount) throw shapeConflict(table, 'COLUMN_COUNT', seq);
    const expected = foldName(listed.name) === 'sqlite_stat1' ? STAT1_PK : Uint8Array.from(pks);
    if (!bytesEqual(expected, table.pk)) throw shapeConflict(table, 'PRIMARY_KEY', seq);
    return { name: listed.name, isShadow: listed.type === 'shadow' };
  });
}

function shapeConflict(table: ChangesetTable, conflict: ShapeConflict, seq: number | undefined): ChangetrailError<'CHANGESET_CONFLICT'> {
  const what: Record<ShapeConflict, string> = {
    NO_SUCH_TABLE: 'the target has no such table',
    COLUMN_COUNT: `the target's column count differs from the changeset's ${table.columnCount}`,
    PRIMARY_KEY: 'the target\'s PRIMARY KEY differs from the changeset\'s',
  };
  return new ChangetrailError('CHANGESET_CONFLICT', `apply changeset${seq === undefined ? '' : ` of entry ${seq}`} to "${table.name}": ${what[conflict]}`, {
    table: table.name, conflict, ...(seq === undefined ? {} : { seq }),
  });
}
