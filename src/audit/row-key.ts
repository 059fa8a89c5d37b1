/**
 * A row's identity as audit stores and matches it: the text forms of its PRIMARY KEY values, in PRIMARY
 * KEY order, as a JSON array. Keys given on the command line are text, so the text form is what is
 * compared: INTEGER 5 and TEXT '5' in the same table are both found by `5` (a table cannot hold both
 * under one declared key type without an unusual affinity; audit shows each change with its typed value).
 */
import { SqlText, type Value } from '../changeset/index.js';
import { toHex } from '../journal/bytes.js';

/** The text form of one key value: integers in decimal, REAL as JavaScript prints it, BLOB as x'hex'. */
export function formatKeyValue(value: Value): string {
  if (value === null) return 'NULL';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  if (value instanceof SqlText) return `x'${toHex(value.bytes)}'`;
  return `x'${toHex(value)}'`;
}

/** The stored key of a row: JSON array of {@link formatKeyValue} forms, in PRIMARY KEY order. */
export function formatRowKey(values: readonly Value[]): string {
  return JSON.stringify(values.map(formatKeyValue));
}

/** The stored key for key values given as text (the command line). */
export function rowKeyOfText(values: readonly string[]): string {
  return JSON.stringify(values);
}

/** Values in PRIMARY KEY order from a record of one change: `pk` holds each column's 1-based ordinal or 0. */
export function keyValuesOf(fields: readonly (Value | undefined)[], pk: ArrayLike<number>): Value[] {
  const ordered: { ordinal: number; value: Value }[] = [];
  for (let i = 0; i < pk.length; i++) {
    if (pk[i]! > 0) ordered.push({ ordinal: pk[i]!, value: fields[i] ?? null });
  }
  return ordered.sort((a, b) => a.ordinal - b.ordinal).map((c) => c.value);
}
