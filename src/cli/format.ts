/**
 * Human output of the CLI. Everything that came from a journal or a database (actor, message, meta,
 * table and column names, SQL, values) is untrusted: it goes through `escapeControl` so it cannot move
 * the cursor, erase lines or retitle the terminal (issue 9 §2.2). JSON output needs no escaping.
 */
import { toHex } from '../changeset/hex.js';
import { SqlText } from '../changeset/sql-text.js';
import type { Value } from '../changeset/types.js';
import type { RowChange, RowValues } from '../changeset/rows.js';
import type { TableCounts } from '../journal/entry.js';
import type { Entry } from '../write/entry-view.js';
import { toJson, type Output } from './output.js';

/**
 * C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi overrides
 * and isolates, line/paragraph separators): each is a way to make a line display as something else.
 */
const UNSAFE_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\u001b': '\\e' };

/** `text` with every control or text-reordering character shown as an escape (`\r`, `\e`, `\x07`, `\u202e`). */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE_CHARACTER, escapeCharacter);
}

/**
 * Multi-line text (migration SQL) as indented lines: newlines and tabs are kept, every other control
 * character is escaped as in `escapeControl`.
 */
export function escapeBlock(text: string, indent: string): string[] {
  return text.replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n').map((line) => indent + line.replace(UNSAFE_CHARACTER, (c) => (c === '\t' ? c : escapeCharacter(c))));
}

function escapeCharacter(character: string): string {
  const named = NAMED_ESCAPES[character];
  if (named !== undefined) return named;
  const code = character.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** How many bytes of a BLOB human output shows before shortening it. */
export const BLOB_PREVIEW_BYTES = 16;

/** A value as a short SQL-like literal: NULL, 42, 1.5, 'text', x'89504e47…' (n bytes). */
export function formatValue(value: Value): string {
  if (value === null) return 'NULL';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isInteger(value) && Number.isFinite(value) ? value.toFixed(1) : String(value);
  if (typeof value === 'string') return `'${escapeControl(value).replaceAll("'", "''")}'`;
  const bytes = value instanceof SqlText ? value.bytes : value;
  const shown = bytes.byteLength > BLOB_PREVIEW_BYTES ? `${toHex(bytes.subarray(0, BLOB_PREVIEW_BYTES))}…` : toHex(bytes);
  const literal = `x'${shown}'${bytes.byteLength > BLOB_PREVIEW_BYTES ? ` (${bytes.byteLength} bytes)` : ''}`;
  return value instanceof SqlText ? `CAST(${literal} AS TEXT)` : literal;
}

/** `col=value col2=value` for a row's values. */
export function formatValues(values: RowValues): string {
  return Object.entries(values).map(([column, value]) => `${escapeControl(column)}=${formatValue(value)}`).join(' ');
}

/** One row change: `update t id=2: name='bob' -> name='Bob'`; key columns are shown once, after the table. */
export function formatRowChange(row: RowChange): string {
  const head = `${row.op.padEnd(6)} ${escapeControl(row.table)} ${formatValues(row.pk)}`;
  const values = (v: RowValues | null) => formatValues(Object.fromEntries(Object.entries(v ?? {}).filter(([column]) => !Object.hasOwn(row.pk, column))));
  if (row.op === 'insert') return `${head}: ${values(row.after)}`.trimEnd();
  if (row.op === 'delete') return row.before === null ? head : `${head}: ${values(row.before)}`.trimEnd();
  return `${head}: ${row.before === null ? '' : `${values(row.before)} -> `}${values(row.after)}`;
}

/** `t +2 ~1, u -1`: per-table counts without zero terms; '' when nothing changed. */
export function formatCounts(tables: readonly TableCounts[]): string {
  return tables.map((t) => {
    const terms = [t.inserts > 0 ? `+${t.inserts}` : '', t.updates > 0 ? `~${t.updates}` : '', t.deletes > 0 ? `-${t.deletes}` : ''].filter((s) => s !== '');
    return `${escapeControl(t.table)} ${terms.join(' ')}`.trimEnd();
  }).join(', ');
}

/** `1 entry`, `2 entries`. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** The short form of an entry hash shown in human output (like git's abbreviated commit ids). */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/** What an entry did, in a few words: `t +2 ~1`, `schema change`, `resync (snapshot-4.db)`. */
export function formatEffect(entry: Entry): string {
  const counts = formatCounts(entry.tables);
  if (entry.kind === 'schema') return counts === '' ? 'schema change' : `schema change; ${counts}`;
  if (entry.kind === 'resync') return `resync${entry.snapshot === undefined ? '' : ` (${escapeControl(entry.snapshot.file)})`}`;
  if (entry.kind === 'checkpoint') return `state as of #${entry.at?.seq ?? '?'}${entry.snapshot === undefined ? '' : ` (${escapeControl(entry.snapshot.file)})`}`;
  return counts === '' ? 'no row changes' : counts;
}

/** `--oneline`: `<hash> #<seq> <message or effect> [undoes #n]`. */
export function formatEntryOneline(entry: Entry, out: Output): string {
  const subject = entry.message === null ? formatEffect(entry) : `${escapeControl(firstLine(entry.message))}  (${formatEffect(entry)})`;
  const undoes = entry.undoes === undefined ? '' : ` ${out.paint(`undoes #${entry.undoes}`, 'cyan')}`;
  return `${out.paint(shortHash(entry.hash), 'yellow')} #${entry.seq} ${entry.kind === 'write' ? '' : `${entry.kind}: `}${subject}${undoes}`;
}

/** The default (git log-like) block for an entry: header with hash, then fields, then the message. */
export function formatEntry(entry: Entry, out: Output): string[] {
  const lines = [`${out.paint(`entry ${entry.seq} ${shortHash(entry.hash)}`, 'yellow')}${entry.undoes === undefined ? '' : `  ${out.paint(`undoes #${entry.undoes}`, 'cyan')}`}`];
  lines.push(`Kind:    ${entry.kind}`);
  lines.push(`Actor:   ${entry.actor === null ? '-' : escapeControl(entry.actor)}`);
  lines.push(`Date:    ${entry.time.toISOString()}`);
  if (entry.meta !== null) lines.push(`Meta:    ${escapeControl(toJson(entry.meta))}`);
  lines.push(`Changes: ${formatEffect(entry)}`);
  if (entry.message !== null) lines.push('', ...escapeBlock(entry.message, '    '));
  return lines;
}

function firstLine(text: string): string {
  const end = text.search(/[\r\n]/);
  return end < 0 ? text : `${text.slice(0, end)}…`;
}
