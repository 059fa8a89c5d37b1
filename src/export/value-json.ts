/**
 * The lossless JSON form of SQLite values used by the ndjson and Debezium exports. JSON has one number
 * type, so the type is carried by the literal's spelling: an INTEGER is written as a bare integer literal
 * with every digit (64-bit values stay exact for any parser that keeps the source text), a REAL always has
 * a `.` or an exponent (`1.0`, `-0.0`, `1e+300`), and what JSON cannot write is an object: ±Infinity
 * `{"$real":"Infinity"}`, BLOB `{"$blob":"<hex>"}`, TEXT that is not valid UTF-8 `{"$textHex":"<hex>"}`.
 */
import type { Value } from '../changeset/index.js';
import { SqlText } from '../changeset/index.js';
import { fromHex, toHex } from '../journal/bytes.js';

/** A value as JSON text (see the module comment). */
export function formatJsonValue(value: Value): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return formatReal(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof SqlText) return `{"$textHex":"${toHex(value.bytes)}"}`;
  return `{"$blob":"${toHex(value)}"}`;
}

function formatReal(real: number): string {
  if (real === Infinity) return '{"$real":"Infinity"}';
  if (real === -Infinity) return '{"$real":"-Infinity"}';
  if (Object.is(real, -0)) return '-0.0';
  // String() is the shortest text that reads back as the same double.
  const text = String(real);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** `{"col": value, ...}` with columns in the given order; `null` for no row image. */
export function formatJsonRow(row: ReadonlyArray<readonly [string, Value]> | null): string {
  if (row === null) return 'null';
  return `{${row.map(([column, value]) => `${JSON.stringify(column)}:${formatJsonValue(value)}`).join(',')}}`;
}

/**
 * Parses one line of the ndjson or Debezium export back into values: INTEGER literals become `bigint`,
 * REAL literals `number`, the `$real`/`$blob`/`$textHex` objects their values. Other fields keep their
 * JSON types (a `seq` becomes a bigint too: compare with `Number(...)`).
 *
 * @example
 * const change = parseExportLine(line) as { after: Record<string, Value> };
 * @throws SyntaxError if the line is not JSON.
 */
export function parseExportLine(line: string): unknown {
  return JSON.parse(line, reviveValue);
}

function reviveValue(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number' && context?.source !== undefined && /^-?\d+$/.test(context.source)) return BigInt(context.source);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [key] = keys as [string];
      const inner = (value as Record<string, unknown>)[key];
      if (typeof inner === 'string') {
        if (key === '$blob') return fromHex(inner);
        if (key === '$textHex') return new SqlText(fromHex(inner));
        if (key === '$real' && (inner === 'Infinity' || inner === '-Infinity')) return Number(inner);
      }
    }
  }
  return value;
}
