/** `changetrail show <db> <seq>`: one entry's row-level changes, with column names. */
import { changesetToRows, decodeChangeset, rowChangeToJson, type ChangesetSchema } from '../../changeset/index.js';
import { findTable, type DatabaseSchema } from '../../apply/schema.js';
import { openSchemaHistory } from '../../apply/schema-history.js';
import { openJournal } from '../../journal/journal.js';
import { ChangetrailError } from '../../errors.js';
import { openTrailReader } from '../../write/read-only.js';
import { defineCommand } from '../command.js';
import { escapeBlock, formatEntry, formatRowChange } from '../format.js';
import { entryJson, parseSeq, trackedDatabase } from '../helpers.js';

export const show = defineCommand({
  name: 'show',
  summary: 'the row-level changes of one entry',
  args: ['db', 'seq'],
  options: {},
  examples: ['changetrail show app.db 3', 'changetrail show app.db 3 --json'],
  async run({ args, options, out }) {
    const [db, text] = args;
    const seq = parseSeq('show', text);
    const trail = await openTrailReader(trackedDatabase('show', db!));
    try {
      const { headSeq, head } = await trail.status();
      if (seq < 1 || seq > headSeq) {
        throw new ChangetrailError('ENTRY_NOT_FOUND', `show: entry ${seq} does not exist (${headSeq === 0 ? 'the journal holds no entries yet' : `the journal holds 1..${headSeq}`})`, { seq, headSeq });
      }
      const history = openSchemaHistory(openJournal(trail.journalDir, head));
      const schema = history.schemaFor(seq);
      history.close();
      for (const entry of trail.entries({ from: seq, to: seq })) {
        const rows = changesetToRows(entry.changeset, renderSchema(schema, entry.changeset));
        if (options.json) {
          out.record({ ...entryJson(entry), ...(entry.sql === undefined ? {} : { sql: entry.sql }), changes: rows.map(rowChangeToJson) });
          continue;
        }
        for (const line of formatEntry(entry, out)) out.line(line);
        if (entry.sql !== undefined) {
          out.line();
          for (const line of escapeBlock(entry.sql, '    ')) out.line(line);
        }
        if (rows.length > 0) out.line();
        for (const row of rows) out.line(`    ${formatRowChange(row)}`);
      }
      return 0;
    } finally {
      trail.close();
    }
  },
});

/**
 * Column names for the tables of a changeset, from the schema as of its entry (schema-history.ts); a
 * table that schema cannot name with the changeset's column count is rendered as c0, c1, ...
 */
function renderSchema(current: DatabaseSchema, changeset: Uint8Array): ChangesetSchema {
  const schema: ChangesetSchema = {};
  for (const { name, columnCount } of decodeChangeset(changeset).tables) {
    const columns = findTable(current, name)?.columns ?? [];
    schema[name] = { columns: columns.length === columnCount ? [...columns] : Array.from({ length: columnCount }, (_, i) => `c${i}`) };
  }
  return schema;
}
