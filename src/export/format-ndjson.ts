/**
 * `ndjson`: one JSON line per row change, `{seq, table, op, indirect, key, before, after}` with column
 * names as of that entry; a schema entry is a line `{seq, op: "schema", sql}` in place, followed by the
 * rows its migration changed. Values use the lossless encoding of value-json.ts.
 */
import { iterateChangeset } from '../changeset/index.js';
import type { DatabaseSchema } from '../apply/schema.js';
import type { JournalEntry } from '../journal/journal.js';
import { selectTables, TextBatch, unsupportedEntry, type Chunk, type ExportContext, type FormatWriter } from './export-format.js';
import { columnNames, isHiddenTable, toRowImage, type RowChangeImage } from './row-image.js';
import { formatJsonRow } from './value-json.js';

/** Yields each row change of an entry as named images, honouring the table selection and hidden tables. */
export function* entryRowImages(context: ExportContext, entry: JournalEntry, schema: DatabaseSchema): Generator<RowChangeImage> {
  const hidden = context.includeShadow ? undefined : (name: string) => isHiddenTable(schema, name);
  const bytes = selectTables(context, entry.changeset, hidden);
  let columns: readonly string[] = [];
  let lastGroup: object | null = null;
  for (const { group, change } of iterateChangeset(bytes)) {
    if (group !== lastGroup) {
      columns = columnNames(schema, group, entry.seq);
      lastGroup = group;
    }
    yield toRowImage(group, change, columns);
  }
}

export class NdjsonWriter implements FormatWriter {
  readonly #context: ExportContext;

  constructor(context: ExportContext) {
    this.#context = context;
  }

  *begin(): Iterable<Chunk> {}

  *entry(entry: JournalEntry, schema: DatabaseSchema): Iterable<Chunk> {
    if (entry.kind === 'resync') throw unsupportedEntry(this.#context, entry);
    const batch = new TextBatch();
    if (entry.kind === 'schema') batch.add(`{"seq":${entry.seq},"op":"schema","sql":${JSON.stringify(entry.sql ?? '')}}\n`);
    for (const row of entryRowImages(this.#context, entry, schema)) {
      const line = `{"seq":${entry.seq},"table":${JSON.stringify(row.table)},"op":"${row.op}","indirect":${row.indirect},`
        + `"key":${formatJsonRow(row.key)},"before":${formatJsonRow(row.before)},"after":${formatJsonRow(row.after)}}\n`;
      const chunk = batch.add(line);
      if (chunk !== null) yield chunk;
    }
    const rest = batch.flush();
    if (rest !== null) yield rest;
  }

  *end(): Iterable<Chunk> {}
}
