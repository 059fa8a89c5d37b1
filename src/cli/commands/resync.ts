/** `changetrail resync <db>`: record the database as it is now, after changes made outside changetrail. */
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { formatEntry } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, trackedDatabase } from '../helpers.js';


export const resync = defineCommand({
  name: 'resync',
  summary: 'record the database as it is now (after changes made outside changetrail) with a fresh snapshot',
  args: ['db'],
  options: { ...AUDIT_OPTIONS, 'if-changed': { type: 'boolean', description: 'first compare with a replay of the journal; if no row differs (VACUUM, ANALYZE), only acknowledge' } },
  description: 'Changes made outside changetrail cannot be journaled row by row after the fact: a resync entry\nrefers to a snapshot of the whole database, from which replicas restart. Earlier entries stay.\nWith --if-changed, a database whose rows equal its replayed journal (only VACUUM, ANALYZE or\nPRAGMA optimize ran) gets no snapshot: its new file state is acknowledged and nothing is journaled.',
  examples: ['changetrail resync app.db -m "accept the manual fix of 2 May"', 'changetrail resync app.db --if-changed'],
  async run({ args, options, out }) {
    const audit = auditOptions(options, 'resync');
    const databasePath = trackedDatabase('resync', args[0]!);
    const trail = await openTrail(databasePath);
    try {
      const entry = await trail.resync({ ...audit, ...(options['if-changed'] === true ? { ifChanged: true } : {}) });
      if (entry === null) {
        if (out.json) out.record(null);
        else out.line('no row differs from the replayed journal: acknowledged, nothing journaled');
        return 0;
      }
      if (out.json) out.record({ ...entryJson(entry), snapshot: entry.snapshot });
      else for (const line of formatEntry(entry, out)) out.line(line);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
