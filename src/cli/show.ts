/** `changetrail show <db> <seq>`: one entry's row-level changes, with column names. */
import type { DatabaseSync } from 'node:sqlite';
import { changesetToRows, decodeChangeset, type ChangesetSchema } from '../changeset/index.js';
import { findTable, readSchema } from '../apply/schema.js';
import { ChangetrailError } from '../errors.js';
import { openTrail } from '../write/trail.js';
import { entryLine, formatEntry, parse, parseSeq, requireJournal, toJson, type Command } from './io.js';

export const show: Command = async (args, io) => {
  const { values, positionals } = parse('show', args, {}, ['db', 'seq']);
  requireJournal('show', positionals[0]!);
  const seq = parseSeq('show', positionals[1]);
  const trail = await openTrail(positionals[0]!);
  try {
    let found = false;
    for await (const entry of trail.entries({ from: seq, to: seq })) {
      found = true;
      const rows = changesetToRows(entry.changeset, renderSchema(trail.database, entry.changeset));
      if (values.json) {
        io.out(toJson({ ...entryLine(entry), ...(entry.sql === undefined ? {} : { sql: entry.sql }), changes: rows }));
      } else {
        io.out(formatEntry(entry));
        if (entry.sql !== undefined) io.out(`    sql: ${entry.sql}`);
        for (const row of rows) io.out(`    ${row.op.padEnd(6)} ${row.table} ${toJson(row.pk)} ${toJson(row.before)} -> ${toJson(row.after)}`);
      }
    }
    if (!found) {
      const head = (await trail.status()).headSeq;
      throw new ChangetrailError('ENTRY_NOT_FOUND', `show: entry ${seq} does not exist (the journal holds 1..${head})`, { seq, headSeq: head });
    }
    return 0;
  } finally {
    await trail.close();
  }
};

/**
 * Column names for the tables of a changeset, from the database's current schema. Columns added later by
 * ALTER TABLE ADD COLUMN come last, so an older changeset's columns are a prefix; a table whose current
 * shape cannot name them (dropped, or columns removed) is rendered with positional names c0, c1, ...
 */
function renderSchema(db: DatabaseSync, changeset: Uint8Array): ChangesetSchema {
  const schema: ChangesetSchema = {};
  const current = readSchema(db);
  for (const { table, columnCount } of tablesOf(changeset)) {
    const columns = findTable(current, table)?.columns ?? [];
    schema[table] = { columns: columns.length >= columnCount ? columns.slice(0, columnCount) : Array.from({ length: columnCount }, (_, i) => `c${i}`) };
  }
  return schema;
}

function tablesOf(changeset: Uint8Array): { table: string; columnCount: number }[] {
  return decodeChangeset(changeset).tables.map((t) => ({ table: t.name, columnCount: t.columnCount }));
}
