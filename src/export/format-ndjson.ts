/**
 * `ndjson`: one JSON line per row change, `{seq, table, op, indirect, key, before, after}` with column
 * names as of that entry; a schema entry is a line `{seq, op: "schema", sql}` in place, followed by the
 * rows its migration changed. Values use the lossless encoding of value-json.ts.
 */
import { iterateChangeset, type Change, type Field, type TableChanges, type Value } from '../changeset/index.js';
import type { DatabaseSchema } from '../apply/schema.js';
import type { JournalEntry } from '../journal/journal.js';
import { foldAscii, selectTables, TextBatch, unsupportedEntry, type Chunk, type ExportContext, type FormatWriter } from './export-format.js';
import { columnNames, isHiddenTable, stat1Nulls, toRowImage, type RowChangeImage } from './row-image.js';
import { formatJsonValue } from './value-json.js';

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
    const hidden = this.#context.includeShadow ? undefined : (name: string) => isHiddenTable(schema, name);
    let lines: GroupLines | null = null;
    let lastGroup: object | null = null;
    for (const { group, change } of iterateChangeset(selectTables(this.#context, entry.changeset, hidden))) {
      if (group !== lastGroup) {
        lines = new GroupLines(entry.seq, group, columnNames(schema, group, entry.seq));
        lastGroup = group;
      }
      const chunk = batch.add(lines!.line(change));
      if (chunk !== null) yield chunk;
    }
    const rest = batch.flush();
    if (rest !== null) yield rest;
  }

  *end(): Iterable<Chunk> {}
}

/**
 * Renders the lines of one table group straight from the decoded fields (the same shape as
 * {@link toRowImage}, without building images: an export allocates per row only what it prints).
 */
class GroupLines {
  readonly #head: string;
  readonly #names: readonly string[];
  readonly #keyOrder: readonly number[];
  readonly #isPk: readonly boolean[];
  readonly #patchset: boolean;
  readonly #stat1: boolean;

  constructor(seq: number, group: TableChanges, columns: readonly string[]) {
    this.#head = `{"seq":${seq},"table":${JSON.stringify(group.name)},"op":"`;
    this.#names = columns.slice(0, group.columnCount).map((column) => `${JSON.stringify(column)}:`);
    this.#isPk = Array.from(group.pk, (ordinal) => ordinal !== 0);
    this.#keyOrder = this.#isPk.map((pk, column) => (pk ? column : -1)).filter((column) => column >= 0).sort((a, b) => group.pk[a]! - group.pk[b]!);
    this.#patchset = group.kind === 'patchset';
    this.#stat1 = foldAscii(group.name) === 'sqlite_stat1';
  }

  line(original: Change): string {
    const change = this.#stat1 ? stat1Nulls(original) : original;
    const fields = change.op === 'insert' ? change.new! : change.old!;
    let key = '';
    for (const column of this.#keyOrder) key += `${key === '' ? '' : ','}${this.#names[column]}${formatJsonValue(fields[column] as Value)}`;
    let before = 'null';
    let after = 'null';
    if (change.op === 'insert') after = this.#image(change.new!);
    else if (change.op === 'delete') before = this.#patchset ? 'null' : this.#image(change.old!);
    else {
      before = this.#patchset ? 'null' : this.#changed(change.old!, change.new!);
      after = this.#changed(change.new!, change.new!);
    }
    return `${this.#head}${change.op}","indirect":${change.indirect},"key":{${key}},"before":${before},"after":${after}}\n`;
  }

  #image(fields: readonly Field[]): string {
    let text = '';
    for (let column = 0; column < fields.length; column++) {
      const field = fields[column];
      if (field !== undefined) text += `${text === '' ? '' : ','}${this.#names[column]}${formatJsonValue(field)}`;
    }
    return `{${text}}`;
  }

  /** The values of `fields` for the non-key columns that `changed` defines (an UPDATE's changed columns). */
  #changed(fields: readonly Field[], changed: readonly Field[]): string {
    let text = '';
    for (let column = 0; column < fields.length; column++) {
      const field = fields[column];
      if (field !== undefined && changed[column] !== undefined && !this.#isPk[column]) text += `${text === '' ? '' : ','}${this.#names[column]}${formatJsonValue(field)}`;
    }
    return `{${text}}`;
  }
}
