/** `changetrail migrate <db> <file.sql>`: a schema migration, journaled as a schema entry. */
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { formatEntry } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, readSqlInput, trackedDatabase } from '../helpers.js';


export const migrate = defineCommand({
  name: 'migrate',
  summary: 'run a schema migration (file, or - for stdin), journaled as a schema entry',
  args: ['db', 'file.sql'],
  options: { ...AUDIT_OPTIONS },
  description: 'Runs the file in one transaction with foreign keys off (so table rebuilds do not cascade);\nreplicas and replays run the same SQL at the same point in the history.',
  examples: ['changetrail migrate app.db migrations/003-add-email.sql -m "add email"'],
  async run({ args, options, out }) {
    const [db, file] = args;
    const sql = readSqlInput('migrate', file!);
    const audit = auditOptions(options, 'migrate');
    const databasePath = trackedDatabase('migrate', db!);
    const trail = await openTrail(databasePath);
    try {
      const entry = await trail.migrate(sql, audit);
      if (out.json) out.record(entry === null ? null : { ...entryJson(entry), sql: entry.sql });
      else if (entry === null) out.line('no changes: nothing journaled');
      else for (const line of formatEntry(entry, out)) out.line(line);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
