/** `changetrail export <db> --since X [...]`: what changed after X up to Y, on stdout or into a file. */
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { exportChanges, type ExportStream } from '../../export/export-changes.js';
import { EXPORT_FORMATS, type ExportFormat } from '../../export/export-format.js';
import type { ResolvedPosition } from '../../export/resolve-position.js';
import { defineCommand, usage } from '../command.js';
import { requireJournal } from '../helpers.js';
import { OutputClosed } from '../output.js';

const BINARY_FORMATS: ReadonlySet<ExportFormat> = new Set(['changeset', 'patchset']);

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'what changed after X (up to Y): changeset, patchset, sql, ndjson or debezium',
  args: ['db'],
  options: {
    since: { type: 'string', value: 'X', description: 'start after this entry (exclusive): a seq, an entry hash prefix or @<time>; 0 = from genesis' },
    until: { type: 'string', value: 'Y', description: 'last entry included (default: the head)' },
    table: { type: 'string', multiple: true, value: 'name', description: 'only this table (repeatable)' },
    format: { type: 'string', value: 'format', description: `${EXPORT_FORMATS.join(' | ')} (default ndjson)` },
    each: { type: 'boolean', description: 'entry by entry instead of the net effect (changeset, patchset, sql)' },
    'include-shadow': { type: 'boolean', description: 'keep FTS/R*Tree shadow tables and changetrail\'s own table in ndjson/debezium' },
    output: { type: 'string', short: 'o', value: 'file', description: 'write to this file (replaced only when the export succeeds) instead of stdout' },
  },
  description: [
    'A time resolves to the last entry committed at or before it; stderr says which entries were chosen.',
    'sql: run with the stock sqlite3 shell on a copy of the database as of X (e.g. from `changetrail restore`);',
    'it is exact with triggers, FTS indexes and cascades. changeset/patchset: the net effect, byte-compatible',
    'with sqlite3changegroup; they cannot carry a schema entry (refused: EXPORT_RANGE_UNSUPPORTED).',
    'ndjson: {seq, table, op, indirect, key, before, after} per row change; debezium: Debezium\'s envelope.',
  ].join('\n'),
  examples: [
    'changetrail export app.db --since 41 --format sql -o changes.sql',
    'changetrail export app.db --since @2026-11-30T12:00Z --table orders',
    'changetrail export app.db --since 3b688f33 --format debezium | kcat -P -t app.changes',
  ],
  async run({ args, options, out }) {
    if (options.since === undefined) throw usage('export', '--since is required (a seq, an entry hash prefix or @<time>; 0 for everything)');
    const format = (options.format ?? 'ndjson') as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) throw usage('export', `unknown --format ${format} (expected ${EXPORT_FORMATS.join(', ')})`);
    if (options.output === undefined && BINARY_FORMATS.has(format) && process.stdout.isTTY === true) {
      // Raw bytes (table names from the journal among them) would reach the terminal unescaped.
      throw usage('export', `--format ${format} is binary and is not written to a terminal: give -o <file>, or redirect stdout`);
    }
    requireJournal('export', args[0]!);
    let stream: ExportStream;
    try {
      stream = exportChanges(args[0]!, {
        since: options.since, format, each: options.each ?? false, includeShadow: options['include-shadow'] ?? false,
        ...(options.until === undefined ? {} : { until: options.until }), ...(options.table === undefined ? {} : { tables: options.table }),
      });
    } catch (error) {
      if (error instanceof RangeError) throw usage('export', error.message);
      throw error;
    }
    const range = { format, since: describe(stream.since), until: describe(stream.until) };
    out.notice(out.json ? JSON.stringify(range) : `export ${format}: the entries after ${range.since.seq} through ${range.until.seq}`
      + (stream.since.by === 'seq' ? '' : ` (--since ${stream.since.spec} is entry ${range.since.seq})`)
      + (stream.until.by === 'seq' || stream.until.spec === 'head' ? '' : ` (--until ${stream.until.spec} is entry ${range.until.seq})`));
    if (options.output === undefined) await writeToStdout(stream);
    else await writeAtomically(options.output, stream);
    return 0;
  },
});

/** `export ... | head` stops quietly like every command (main exits 0 on OutputClosed), not as an internal error. */
async function writeToStdout(stream: NodeJS.ReadableStream): Promise<void> {
  try {
    await pipeline(stream, process.stdout, { end: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException | null)?.code === 'EPIPE') throw new OutputClosed();
    throw error;
  }
}

function describe(resolved: ResolvedPosition): { seq: number; hash: string; spec: string } {
  return { seq: resolved.position.seq, hash: resolved.position.hash, spec: resolved.spec };
}

/** Writes into a temporary file beside `path` and renames it: a failed export leaves no partial file. */
async function writeAtomically(path: string, stream: NodeJS.ReadableStream): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await pipeline(stream, createWriteStream(temp));
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
