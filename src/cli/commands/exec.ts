/** `changetrail exec <db> "<sql>"`: run SQL as one admitted, journaled write. */
import { openTrail } from '../../write/trail.js';
import { defineCommand, usage } from '../command.js';
import { formatEntry } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, readSqlInput, trackedDatabase } from '../helpers.js';


export const exec = defineCommand({
  name: 'exec',
  summary: 'run SQL as one admitted, journaled write (SQL from an argument, --file, or - for stdin)',
  args: ['db', 'sql?'],
  options: {
    ...AUDIT_OPTIONS,
    file: { type: 'string', short: 'f', value: 'file.sql', description: 'read the SQL from a file (- for stdin)' },
  },
  description: 'All statements run in one transaction and become one entry; nothing is journaled when they\nchange nothing. Schema changes (CREATE, ALTER, DROP) are refused here: use migrate.',
  examples: [`changetrail exec app.db "UPDATE users SET plan = 'pro' WHERE id = 7" -m "upgrade #7"`, 'changetrail exec app.db - < fix.sql', 'changetrail exec app.db --file fix.sql'],
  async run({ args, options, out }) {
    const [db, text] = args;
    if ((text === undefined) === (options.file === undefined)) throw usage('exec', 'give the SQL as an argument, with --file <file.sql>, or as - to read stdin (one of them)');
    const sql = options.file !== undefined ? readSqlInput('exec', options.file) : text === '-' ? readSqlInput('exec', '-') : text!;
    const audit = auditOptions(options, 'exec');
    const databasePath = trackedDatabase('exec', db!);
    const trail = await openTrail(databasePath);
    try {
      const entry = await trail.write((connection) => connection.exec(sql), audit);
      if (out.json) out.record(entry === null ? null : entryJson(entry));
      else if (entry === null) out.line('no changes: nothing journaled');
      else for (const line of formatEntry(entry, out)) out.line(line);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
