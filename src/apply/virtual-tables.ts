/**
 * The virtual tables of a database as undo needs to know them: which module, and for FTS5 where its rows
 * live (external content table, its own `_content` table, or nowhere: contentless). Read from the
 * `CREATE VIRTUAL TABLE` statement in `sqlite_schema` and `PRAGMA table_xinfo`.
 */
import type { DatabaseSync } from 'node:sqlite';

/** How an index keeps its rows. */
export type VirtualTableKind = 'fts5-external' | 'fts5-regular' | 'fts5-contentless' | 'other';

export interface VirtualTable {
  readonly name: string;
  /** The module name, lower case (`fts5`, `rtree`, `fts4`, ...). */
  readonly module: string;
  readonly kind: VirtualTableKind;
  /** FTS5 external content: the content table (`content=`). */
  readonly content?: string;
  /** FTS5 external content: the content table's column holding the rowid (`content_rowid=`, default `rowid`). */
  readonly contentRowid: string;
  /** The indexed (non-hidden) columns, in order. */
  readonly columns: readonly string[];
}

const CREATE_VIRTUAL = /^\s*CREATE\s+VIRTUAL\s+TABLE\s+.*?\bUSING\s+("?)([A-Za-z0-9_]+)\1\s*(?:\(([\s\S]*)\))?\s*$/i;

/** Every virtual table of `main`. */
export function readVirtualTables(db: DatabaseSync): VirtualTable[] {
  const rows = db.prepare(`SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'`).all() as { name: string; sql: string }[];
  return rows.map((row) => describe(db, row.name, row.sql));
}

function describe(db: DatabaseSync, name: string, sql: string): VirtualTable {
  const match = CREATE_VIRTUAL.exec(sql);
  const module = (match?.[2] ?? '').toLowerCase();
  const options = new Map<string, string>();
  for (const arg of splitArguments(match?.[3] ?? '')) {
    const option = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([\s\S]*?)\s*$/.exec(arg);
    if (option !== null) options.set(option[1]!.toLowerCase(), dequote(option[2]!));
  }
  let columns: string[] = [];
  try {
    columns = (db.prepare(`SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid`).all(name) as { name: string }[]).map((c) => c.name);
  } catch {
    // The module is not loaded on this connection: nothing undo could do through it.
  }
  const content = options.get('content');
  const kind: VirtualTableKind = module !== 'fts5' ? 'other' : content === undefined ? 'fts5-regular' : content === '' ? 'fts5-contentless' : 'fts5-external';
  return {
    name, module, kind, ...(kind === 'fts5-external' ? { content: content! } : {}),
    contentRowid: options.get('content_rowid') ?? 'rowid', columns,
  };
}

/** Splits a module argument list at top-level commas, keeping quoted text and parentheses intact. */
function splitArguments(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = text[i + 1] === quote ? (i++, quote) : null;
      continue;
    }
    if (c === '\'' || c === '"' || c === '`') quote = c;
    else if (c === '[') quote = ']';
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      args.push(text.slice(start, i));
      start = i + 1;
    }
  }
  args.push(text.slice(start));
  return args;
}

function dequote(value: string): string {
  const first = value[0];
  const close = first === '[' ? ']' : first;
  if ((first === '\'' || first === '"' || first === '`' || first === '[') && value.endsWith(close!)) {
    const inner = value.slice(1, -1);
    return first === '[' ? inner : inner.replaceAll(`${first}${first}`, first!);
  }
  return value;
}
