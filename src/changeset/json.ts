/** JSON-friendly forms of changeset values, for printing rows. */
import type { Value } from './types.js';
import type { RowChange, RowValues } from './rows.js';
import { SqlText } from './sql-text.js';
import { toHex } from './hex.js';

/** What {@link valueToJson} returns. */
export type JsonFieldValue = null | number | string | { $blob: string } | { $textHex: string };

/**
 * A value in a form `JSON.stringify` accepts, for display. INTEGER becomes a number when it is a safe
 * integer and a decimal string otherwise; REAL a number (±Infinity as the strings `"Infinity"` and
 * `"-Infinity"`; -0 prints as 0); TEXT a string; BLOB `{ "$blob": "<hex>" }`; TEXT that is not valid
 * UTF-8 `{ "$textHex": "<hex>" }`; NULL `null`. INTEGER and REAL are not distinguished, so this is for
 * reading, not for reconstructing values (use the changeset itself for that).
 */
export function valueToJson(value: Value): JsonFieldValue {
  if (value === null) return null;
  if (typeof value === 'bigint') {
    const number = Number(value);
    return Number.isSafeInteger(number) ? number : value.toString();
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return value;
  if (value instanceof SqlText) return { $textHex: toHex(value.bytes) };
  return { $blob: toHex(value) };
}

/** A {@link RowChange} with every value passed through {@link valueToJson}. */
export interface RowChangeJson {
  table: string;
  op: RowChange['op'];
  indirect: boolean;
  /** The PRIMARY KEY columns and their values (`key`, as in `exportChanges`' NDJSON). */
  key: Record<string, JsonFieldValue>;
  before: Record<string, JsonFieldValue> | null;
  after: Record<string, JsonFieldValue> | null;
}

/** {@link valueToJson} applied to every value of a row change. */
export function rowChangeToJson(row: RowChange): RowChangeJson {
  return { table: row.table, op: row.op, indirect: row.indirect, key: valuesToJson(row.pk)!, before: valuesToJson(row.before), after: valuesToJson(row.after) };
}

function valuesToJson(values: RowValues | null): Record<string, JsonFieldValue> | null {
  if (values === null) return null;
  const json: Record<string, JsonFieldValue> = {};
  for (const [column, value] of Object.entries(values)) {
    Object.defineProperty(json, column, { value: valueToJson(value), enumerable: true, writable: true, configurable: true });
  }
  return json;
}
