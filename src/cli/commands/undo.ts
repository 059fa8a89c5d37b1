/** `changetrail undo <db> <seq> [--dry-run]`: reverse an entry as a new entry, or preview it. */
import type { UndoPreview } from '../../write/trail.js';
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { escapeControl, formatEntry } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, parseEntrySeq, trackedDatabase } from '../helpers.js';
import type { Output } from '../output.js';

export const undo = defineCommand({
  name: 'undo',
  summary: 'reverse entry <seq> as a new entry (refused if its rows changed since); --dry-run previews it',
  args: ['db', 'seq'],
  options: {
    ...AUDIT_OPTIONS,
    'dry-run': { type: 'boolean', description: 'change nothing: print the rows it would restore, or why it would be refused (exit 1) with the later entries and keys that conflict' },
  },
  description: 'Nothing is rewritten: the inverse of the entry is applied exactly and journaled as a new entry\nthat records which entry it undoes. Refused (CHANGESET_CONFLICT, conflict ROW_CHANGED_LATER naming the later\nentry and the key) when a later entry changed a row being restored; indexes (FTS5) are kept consistent.',
  examples: ['changetrail undo app.db 3 -m "revert the bulk update"', 'changetrail undo app.db 3 --dry-run --json'],
  async run({ args, options, out }) {
    const [db, text] = args;
    const seq = parseEntrySeq('undo', text);
    const audit = auditOptions(options, 'undo');
    const databasePath = trackedDatabase('undo', db!);
    const trail = await openTrail(databasePath);
    try {
      if (options['dry-run'] === true) return printPreview(await trail.previewUndo(seq), out);
      const entry = await trail.undo(seq, audit);
      if (out.json) out.record(entry === null ? null : entryJson(entry));
      else if (entry === null) out.line('nothing to undo: the entry changed no rows');
      else for (const line of formatEntry(entry, out)) out.line(line);
      return 0;
    } finally {
      await trail.close();
    }
  },
});

function printPreview(preview: UndoPreview, out: Output): number {
  const code = preview.possible ? 0 : 1;
  if (out.json) {
    out.record(preview);
    return code;
  }
  const line = (text: string) => out.line(escapeControl(text));
  const count = `${preview.restores.length} row change${preview.restores.length === 1 ? '' : 's'}`;
  if (preview.possible) line(`undo #${preview.seq} would restore ${count}:`);
  else line(`undo #${preview.seq} would be refused (${preview.refusal?.code}): ${preview.refusal?.message}; it would restore ${count}:`);
  for (const row of preview.restores) {
    line(`  ${row.op} ${row.table} ${JSON.stringify(row.key)}${row.after === null ? '' : ` → ${JSON.stringify(row.after)}`}${row.indirect ? ' (indirect)' : ''}`);
  }
  for (const index of preview.derived) line(`  index ${index.table} (${index.module}): ${index.treatment ?? 'not maintained'}`);
  for (const conflict of preview.conflicts) line(`  conflict: entry ${conflict.laterSeq} changed ${conflict.table} ${JSON.stringify(conflict.key)}`);
  return code;
}
