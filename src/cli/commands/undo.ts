/** `changetrail undo <db> <seq>`: reverse an entry as a new entry. */
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { formatEntry } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, parseEntrySeq, trackedDatabase } from '../helpers.js';


export const undo = defineCommand({
  name: 'undo',
  summary: 'reverse entry <seq> as a new entry (refused if its rows changed since)',
  args: ['db', 'seq'],
  options: { ...AUDIT_OPTIONS },
  description: 'Nothing is rewritten: the inverse of the entry is applied exactly and journaled as a new entry\nthat records which entry it undoes. Refused (CHANGESET_CONFLICT) when later entries changed the same rows.',
  examples: ['changetrail undo app.db 3 -m "revert the bulk update"'],
  async run({ args, options, out }) {
    const [db, text] = args;
    const seq = parseEntrySeq('undo', text);
    const databasePath = trackedDatabase('undo', db!);
    const trail = await openTrail(databasePath);
    try {
      const entry = await trail.undo(seq, auditOptions(options));
      if (out.json) out.record(entry === null ? null : entryJson(entry));
      else if (entry === null) out.line('nothing to undo: the entry changed no rows');
      else for (const line of formatEntry(entry, out)) out.line(line);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
