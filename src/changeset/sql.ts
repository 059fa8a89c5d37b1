/** Changes as SQL statements that the stock `sqlite3` shell (or any SQLite connection) can run. */
import type { Field, TableChanges, Value } from './types.js';
import { decodeChangeset } from './decode.js';
import { columnsFor, schemaLookup, type ChangesetSchema } from './rows.js';
import { SqlText } from './sql-text.js';
import { encodeText } from './value-codec.js';
import { toHex } from './hex.js';
import { ChangetrailError } from '../errors.js';

/** Significant digits that make every double round-trip through decimal text. */
const REAL_DIGITS = 17;
/**
 * SQLite before 3.47 (e.g. the 3.40 shell of Debian 12) misreads some decimal literals below ~1e-291
 * (measured: 1 311 of 218 000 random doubles, all under 8e-292). Such values are written as an exact
 * product `(x * 2^600) * 2^-600` of two literals it reads correctly; scaling by a power of two is exact.
 */
const TINY_REAL_MAX = 1e-280;
const TINY_REAL_SCALE = 2 ** 600;
/** Text with C0 control characters (NUL, newlines...) is written as hex so every statement is one line. */
const CONTROL_CHARACTER = /[\u0000-\u001f]/;
/**
 * Identifiers have no escape syntax in SQL: one holding a line break or another control character (ESC)
 * cannot be written on one line, or shown safely, so `changesetToSql` refuses it.
 */
const UNWRITABLE_IDENTIFIER = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/;

/**
 * Renders a changeset or patchset as SQL: one `INSERT`, `UPDATE` or `DELETE` statement per change, in
 * buffer order, each on its own line and ending with `;`. Run on the database the changeset was
 * captured from (the "before" state) it produces the "after" state, like `sqlite3changeset_apply`
 * without conflict checks: rows are located by primary key only, INSERT names its columns (so columns
 * the changeset does not know get their DEFAULT), UPDATE sets only the changed columns, and an UPDATE
 * that changes nothing is omitted.
 *
 * Identifiers are double-quoted with `"` doubled; values are literals of their exact SQLite type (see
 * {@link formatSqlValue}). Schema rules are those of {@link changesetToRows}. SQL has no escape for
 * identifiers, so a table or column name holding a line break or other control character (newline, ESC)
 * is refused rather than printed across lines.
 *
 * @example
 * changesetToSql(bytes, { t: { columns: ['id', 'name'] } });
 * // 'UPDATE "t" SET "name" = \'bobby\' WHERE "id" = 2;\n'
 * @throws As {@link changesetToRows}; ChangetrailError SQL_IDENTIFIER_UNSUPPORTED `{ identifier, table }` for a
 *   name with a control character.
 */
export function changesetToSql(bytes: Uint8Array, schema: ChangesetSchema): string {
  const lookup = schemaLookup(schema);
  const lines: string[] = [];
  for (const group of decodeChangeset(bytes).tables) {
    const columns = columnsFor(lookup, group).map((column) => lineSafeIdentifier(column, group.name));
    const table = lineSafeIdentifier(group.name, group.name);
    for (const change of group.changes) {
      if (change.op === 'insert') lines.push(insertStatement(table, columns, change.new!));
      else if (change.op === 'delete') lines.push(`DELETE FROM ${table} WHERE ${pkCondition(group, columns, change.old!)};`);
      else {
        const assignments = change.new!
          .map((field, column) => (field === undefined || group.pk[column] !== 0 ? '' : `${columns[column]} = ${formatSqlValue(field)}`))
          .filter((assignment) => assignment !== '');
        if (assignments.length > 0) lines.push(`UPDATE ${table} SET ${assignments.join(', ')} WHERE ${pkCondition(group, columns, change.old!)};`);
      }
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}

function lineSafeIdentifier(name: string, table: string): string {
  if (UNWRITABLE_IDENTIFIER.test(name)) {
    throw new ChangetrailError('SQL_IDENTIFIER_UNSUPPORTED', `changeset to SQL: the name ${JSON.stringify(name)} holds a control character, which SQL cannot write on one line`, { identifier: name, table });
  }
  return quoteIdentifier(name);
}

function insertStatement(table: string, columns: string[], fields: Field[]): string {
  return `INSERT INTO ${table} (${columns.slice(0, fields.length).join(', ')}) VALUES (${fields.map((field) => formatSqlValue(field!)).join(', ')});`;
}

/**
 * Locates the row by its primary key. A table without PK columns (never captured by sessions) is matched
 * on every known old value instead, and never matches when there is none: a statement must not touch
 * rows the change did not name.
 */
function pkCondition(group: TableChanges, columns: string[], old: Field[]): string {
  const known = old.map((field, column) => (field === undefined ? '' : equalsTerm(columns[column]!, field)));
  const pkTerms = known.filter((term, column) => term !== '' && group.pk[column] !== 0);
  const terms = pkTerms.length > 0 ? pkTerms : known.filter((term) => term !== '');
  return terms.length === 0 ? '0' : terms.join(' AND ');
}

function equalsTerm(column: string, value: Value): string {
  return value === null ? `${column} IS NULL` : `${column} = ${formatSqlValue(value)}`;
}

/**
 * An SQL identifier in double quotes, embedded `"` doubled: safe for any name (`a"; DROP TABLE x; --`).
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A value as an SQL literal that SQLite reads back as the same type and bytes:
 * NULL; INTEGER in decimal; REAL with 17 significant digits and a `.` or exponent (so it stays REAL),
 * `-0.0`, `9e999` / `-9e999` for ±Infinity; TEXT in single quotes with `'` doubled, or
 * `CAST(X'…' AS TEXT)` when it holds control characters (NUL, newlines) or is not valid UTF-8
 * ({@link SqlText}); BLOB as `X'…'`.
 */
export function formatSqlValue(value: Value): string {
  if (value === null) return 'NULL';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return formatReal(value);
  if (typeof value === 'string') return CONTROL_CHARACTER.test(value) ? hexText(encodeText(value)) : `'${value.replaceAll("'", "''")}'`;
  if (value instanceof SqlText) return hexText(value.bytes);
  return `X'${toHex(value)}'`;
}

function hexText(bytes: Uint8Array): string {
  return `CAST(X'${toHex(bytes)}' AS TEXT)`;
}

function formatReal(real: number): string {
  if (real === Infinity) return '9e999';
  if (real === -Infinity) return '-9e999';
  if (real === 0) return Object.is(real, -0) ? '-0.0' : '0.0';
  if (Math.abs(real) < TINY_REAL_MAX) return `(${formatReal(real * TINY_REAL_SCALE)} * ${formatReal(1 / TINY_REAL_SCALE)})`;
  const text = real.toPrecision(REAL_DIGITS);
  return /[.e]/.test(text) ? text : `${text}.0`;
}
