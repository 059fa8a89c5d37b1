/** `changetrail blame <db> <table> [--where key]...`: the entry that last changed each current row. */
import { blame as blameTable, type BlameEntry } from '../../audit/blame.js';
import { openDatabaseReader } from '../../journal/database-reader.js';
import { defineCommand, usage } from '../command.js';
import { formatAttribution } from '../audit-output.js';
import { escapeControl } from '../format.js';
import { trackedDatabase } from '../helpers.js';

export const blame = defineCommand({
  name: 'blame',
  summary: 'the entry that last changed each current row of a table (per column with --where)',
  args: ['db', 'table'],
  options: {
    where: { type: 'string', multiple: true, value: 'key value', description: 'one row: its PRIMARY KEY values, one --where each, in PRIMARY KEY order' },
    scan: { type: 'boolean', description: 'answer by reading the whole journal (ignore the audit index)' },
  },
  description: [
    'Rows unchanged since the journal started are blamed on #0 (genesis). With --where, each column is',
    'blamed on the entry that last set its value (a column added later by a migration, on that migration).',
  ].join('\n'),
  examples: ['changetrail blame app.db invoices', 'changetrail blame app.db invoices --where 42 --json'],
  async run({ args, options, out }) {
    const [path, table] = args as [string, string];
    const db = trackedDatabase('blame', path);
    const lines = blameTable(db, table, { index: options.scan === true ? 'off' : 'auto', ...(options.where === undefined ? {} : { where: options.where }) });
    if (lines.length === 0 && !tableExists(db, table)) {
      throw usage('blame', `${db} has no table ${escapeControl(table)} (blame names the rows present now; \`changetrail history\` also finds rows of dropped tables)`);
    }
    if (lines.length === 0 && options.where !== undefined && !out.json) out.line(`no row ${escapeControl(table)} ${escapeControl(JSON.stringify(options.where))} at the head`);
    for (const line of lines) {
      if (out.json) {
        const columns = line.columns === undefined ? {} : { columns: Object.fromEntries(Object.entries(line.columns).map(([c, e]) => [c, entryJson(e)])) };
        out.record({ key: line.key, ...entryJson(line), ...columns });
        continue;
      }
      out.line(`${escapeControl(JSON.stringify(line.key))}  ${out.paint(formatAttribution(line), 'yellow')}`);
      for (const [column, entry] of Object.entries(line.columns ?? {})) out.line(`    ${escapeControl(column)}  ${formatAttribution(entry)}`);
    }
    return 0;
  },
});

function entryJson(entry: BlameEntry): Record<string, unknown> {
  return { seq: entry.seq, hash: entry.hash, kind: entry.kind, time: entry.time?.toISOString() ?? null, actor: entry.actor, message: entry.message };
}

/** Whether the database has `table` now (a read-only look, as every reading command opens it). */
function tableExists(databasePath: string, table: string): boolean {
  const db = openDatabaseReader(databasePath);
  try {
    return db.prepare(`SELECT 1 FROM pragma_table_list(?) WHERE schema = 'main'`).get(table) !== undefined;
  } finally {
    db.close();
  }
}
