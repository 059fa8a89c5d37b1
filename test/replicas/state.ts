/**
 * The `state` of journal/vectors/*\/expected.json (journal/vectors/README.md): every table sessions
 * record — ordinary and shadow tables of `main`, not changetrail's own (`_changetrail*`), not `sqlite_*` —
 * as rows of rendered values — the rowid first for rowid tables, then its non-hidden columns — sorted
 * by their JSON text. The same function is
 * in scripts/gen-vectors.mjs; the vector test fails if the two disagree.
 */
import { DatabaseSync } from 'node:sqlite';

export type State = Record<string, (string | null)[][]>;

export function renderValue(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value === 'bigint') return `integer:${value}`;
  if (typeof value === 'number') {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    return `real:${view.getBigUint64(0).toString(16).padStart(16, '0')}`;
  }
  if (typeof value === 'string') return `text:${value}`;
  return `blob:${Buffer.from(value as Uint8Array).toString('hex')}`;
}

export function dumpState(path: string): State {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables = db.prepare(`SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow')
      AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND lower(name) NOT LIKE '\\_changetrail%' ESCAPE '\\' ORDER BY name`).all() as { name: string; wr: number }[];
    const state: State = {};
    for (const { name, wr } of tables) {
      const columns = (db.prepare(`SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid`).all(name) as { name: string }[])
        .map((c) => `"${c.name.replaceAll('"', '""')}"`);
      if (wr === 0) columns.unshift('rowid');
      const statement = db.prepare(`SELECT ${columns.join(', ')} FROM main."${name.replaceAll('"', '""')}"`);
      statement.setReadBigInts(true);
      statement.setReturnArrays(true);
      const rows = (statement.all() as unknown as unknown[][]).map((row) => row.map(renderValue));
      state[name] = rows.sort((a, b) => compare(JSON.stringify(a), JSON.stringify(b)));
    }
    return state;
  } finally {
    db.close();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
