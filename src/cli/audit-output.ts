/** Human and JSON forms shared by the audit commands (history, blame, diff). */
import { valueToJson, type JsonFieldValue, type RowValues } from '../changeset/index.js';
import { escapeControl, formatValue, shortHash } from './format.js';

export function valuesJson(values: RowValues | null): Record<string, JsonFieldValue> | null {
  if (values === null) return null;
  const json: Record<string, JsonFieldValue> = {};
  for (const [column, value] of Object.entries(values)) {
    Object.defineProperty(json, column, { value: valueToJson(value), enumerable: true, writable: true, configurable: true });
  }
  return json;
}

/** Changed columns, one per line: `col: before → after` (∅: the column is absent on that side). */
export function formatColumnChanges(before: RowValues | null, after: RowValues | null, indent: string, pk: RowValues = {}): string[] {
  // Key columns are shown once, in the step's header.
  const columns = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])].filter((column) => !Object.hasOwn(pk, column));
  return columns.map((column) => {
    const from = before !== null && Object.hasOwn(before, column) ? formatValue(before[column]!) : '∅';
    const to = after !== null && Object.hasOwn(after, column) ? formatValue(after[column]!) : '∅';
    return `${indent}${escapeControl(column)}: ${from} → ${to}`;
  });
}

/** `#12 a1b2c3d4e5f6 2026-… alice  message`, or `#0 genesis`. */
export function formatAttribution(entry: { seq: number; hash: string | null; time: Date | null; actor: string | null; message: string | null; kind: string }): string {
  if (entry.seq === 0) return '#0 genesis';
  const kind = entry.kind === 'write' ? '' : ` ${entry.kind}`;
  const message = entry.message === null ? '' : `  ${escapeControl(entry.message.split(/\r?\n/)[0]!)}`;
  return `#${entry.seq}${kind} ${entry.hash === null ? '' : `${shortHash(entry.hash)} `}${entry.time?.toISOString() ?? '-'} ${escapeControl(entry.actor ?? '-')}${message}`;
}
