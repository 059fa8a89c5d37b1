/**
 * `changeset` and `patchset`: the net effect of the range as one SQLite changeset (what
 * `sqlite3changegroup` computes from the entries' changesets, byte for byte), or with `each` the entries'
 * changesets back to back. A patchset is what `sqlite3changegroup` computes from the entries' patchsets.
 * Neither can carry DDL, so a schema entry in the range is refused.
 */
import { combineChangesets, decodeChangeset, encodeChangeset, type Change, type TableChanges } from '../changeset/index.js';
import type { DatabaseSchema } from '../apply/schema.js';
import type { JournalEntry } from '../journal/journal.js';
import { selectTables, unsupportedEntry, type Chunk, type ExportContext, type FormatWriter } from './export-format.js';

export class ChangesetWriter implements FormatWriter {
  readonly #context: ExportContext;
  readonly #parts: Uint8Array[] = [];

  constructor(context: ExportContext) {
    this.#context = context;
  }

  *begin(): Iterable<Chunk> {}

  *entry(entry: JournalEntry, _schema: DatabaseSchema): Iterable<Chunk> {
    if (entry.kind !== 'write') throw unsupportedEntry(this.#context, entry);
    const selected = selectTables(this.#context, entry.changeset);
    const bytes = this.#context.format === 'patchset' ? changesetToPatchset(selected) : selected;
    if (bytes.byteLength === 0) return;
    if (this.#context.each) yield bytes;
    else this.#parts.push(bytes);
  }

  *end(): Iterable<Chunk> {
    if (this.#context.each || this.#parts.length === 0) return;
    yield combineChangesets(this.#parts.splice(0));
  }
}

/**
 * The patchset SQLite's session would have produced for the same changes: DELETEs keep only the key,
 * UPDATEs the key (old record) and the new values of changed columns; INSERTs are unchanged.
 */
export function changesetToPatchset(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength === 0) return bytes;
  const { tables } = decodeChangeset(bytes);
  return encodeChangeset({ tables: tables.map(toPatchsetGroup) });
}

function toPatchsetGroup(group: TableChanges): TableChanges {
  const isPk = (column: number): boolean => group.pk[column] !== 0;
  const changes = group.changes.map((change): Change => {
    if (change.op === 'insert') return change;
    const old = change.old!.map((field, column) => (isPk(column) ? field : undefined));
    if (change.op === 'delete') return { op: 'delete', indirect: change.indirect, old };
    return { op: 'update', indirect: change.indirect, old, new: change.new!.map((field, column) => (isPk(column) ? undefined : field)) };
  });
  return { ...group, kind: 'patchset', changes };
}
