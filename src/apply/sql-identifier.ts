/**
 * Quoting of SQL identifiers. Table, column, trigger and index names come from the database and from
 * changeset headers, so they are untrusted text: a table may be named `a"; DROP TABLE x; --`.
 */

/**
 * The identifier as a double-quoted SQL identifier, with embedded `"` doubled. Safe for any name,
 * including names with quotes, semicolons, spaces or non-ASCII characters.
 *
 * @example
 * quoteIdentifier('a"b'); // '"a""b"'
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `main."name"`: a table of the main database, never resolved through `temp` or an attached database. */
export function mainTable(name: string): string {
  return `main.${quoteIdentifier(name)}`;
}
