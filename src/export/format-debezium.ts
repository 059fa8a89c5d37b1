/**
 * `debezium`: one line per row change holding Debezium's change-event envelope (the value a Kafka
 * consumer receives with the JSON converter and `schemas.enable=false`):
 *
 * `{before, after, source, op, ts_ms, transaction}` where `op` is `c` (insert), `u` (update) or `d`
 * (delete); `ts_ms` is when the export produced the event and `source.ts_ms` the entry's commit time, so
 * `ts_ms - source.ts_ms` is Debezium's lag measure; `source` names the connector (`changetrail`), the
 * journal (`name`), the database file (`db`), the table, the entry (`seq`, `hash`), its `actor` and
 * `message`; `transaction` is `{id, total_order, data_collection_order}` with the entry's seq as id.
 * `before` and `after` are whole rows, as Debezium sends them: a changeset holds only the key and the
 * changed columns of an UPDATE, so the export keeps a scratch copy of the database (restored at `since`,
 * every exported entry applied to it exactly) and reads each updated row just before and after its entry.
 * Column values use the lossless encoding of value-json.ts. Schema entries carry no DDL here (Debezium
 * sends DDL on a schema-history topic); the rows their migration changed are events like any other.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { DatabaseSchema } from '../apply/schema.js';
import { toHex } from '../journal/bytes.js';
import type { JournalEntry } from '../journal/journal.js';
import { TextBatch, unsupportedEntry, type Chunk, type ExportContext, type FormatWriter } from './export-format.js';
import { entryRowImages } from './format-ndjson.js';
import { formatJsonRow } from './value-json.js';
import { RowState } from './row-state.js';

export const DEBEZIUM_CONNECTOR = 'changetrail';
const OPS = { insert: 'c', update: 'u', delete: 'd' } as const;

export class DebeziumWriter implements FormatWriter {
  readonly #context: ExportContext;
  readonly #db: string;
  readonly #version: string;
  #state: RowState | null = null;

  constructor(context: ExportContext) {
    this.#context = context;
    this.#db = JSON.stringify(basename(context.journal.databasePath));
    this.#version = JSON.stringify(packageVersion());
  }

  *begin(): Iterable<Chunk> {
    this.#state = new RowState(this.#context.journal, this.#context.since);
  }

  *entry(entry: JournalEntry, schema: DatabaseSchema): Iterable<Chunk> {
    if (entry.kind === 'resync') throw unsupportedEntry(this.#context, entry);
    const state = this.#state!;
    const rows = [...entryRowImages(this.#context, entry, schema)];
    const befores = rows.map((row) => (row.op === 'update' ? state.row(row.table, row.key) : row.before));
    state.apply(entry);
    const afters = rows.map((row) => (row.op === 'update' ? state.row(row.table, row.key) : row.after));
    const batch = new TextBatch();
    const perTable = new Map<string, number>();
    const common = `"connector":"${DEBEZIUM_CONNECTOR}","name":${JSON.stringify(this.#context.journal.head.journalId)},"ts_ms":${entry.time},`
      + `"snapshot":"false","db":${this.#db}`;
    const entryFields = `"seq":${entry.seq},"hash":"${toHex(entry.hash)}","actor":${JSON.stringify(entry.actor)},"message":${JSON.stringify(entry.message)}`;
    let totalOrder = 0;
    for (const [index, row] of rows.entries()) {
      totalOrder += 1;
      const tableOrder = (perTable.get(row.table) ?? 0) + 1;
      perTable.set(row.table, tableOrder);
      const source = `{"version":${this.#version},${common},"table":${JSON.stringify(row.table)},${entryFields}}`;
      const before = befores[index]!;
      const after = afters[index]!;
      const line = `{"before":${formatJsonRow(before)},"after":${formatJsonRow(after)},"source":${source},"op":"${OPS[row.op]}",`
        + `"ts_ms":${Date.now()},"transaction":{"id":"${entry.seq}","total_order":${totalOrder},"data_collection_order":${tableOrder}}}\n`;
      const chunk = batch.add(line);
      if (chunk !== null) yield chunk;
    }
    const rest = batch.flush();
    if (rest !== null) yield rest;
  }

  *end(): Iterable<Chunk> {}

  close(): void {
    this.#state?.close();
    this.#state = null;
  }
}

let version: string | null = null;

function packageVersion(): string {
  if (version === null) {
    try {
      version = String((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
    } catch {
      version = '0.0.0';
    }
  }
  return version;
}
