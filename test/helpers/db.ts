/** Test helpers over real SQLite files: temp dirs, table dumps and journal replay. */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail, type OpenTrailOptions, type Trail } from '../../src/index.js';

export function tempDir(prefix = 'ct-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `app.db` in a new temp directory with `sql` run in it (no journal yet); its path. */
export function databaseWith(sql: string, prefix = 'ct-'): string {
  const path = join(tempDir(prefix), 'app.db');
  const db = new DatabaseSync(path);
  db.exec(sql);
  db.close();
  return path;
}

export async function tempTrail(setupSql = '', options: OpenTrailOptions = {}): Promise<{ trail: Trail; path: string; dir: string }> {
  const dir = tempDir();
  const path = join(dir, 'app.db');
  if (setupSql) {
    const db = new DatabaseSync(path);
    db.exec(setupSql);
    db.close();
  }
  const trail = await openTrail(path, { lock: { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 }, ...options });
  return { trail, path, dir };
}

/** Every user table (not changetrail's, not sqlite_*) with all rows and each value's type. */
export function dumpTables(db: DatabaseSync): Record<string, unknown[]> {
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_changetrail%' ORDER BY name`).all();
  const dump: Record<string, unknown[]> = {};
  for (const { name } of tables) {
    const quoted = `"${String(name).replaceAll('"', '""')}"`;
    const columns = db.prepare(`SELECT name FROM pragma_table_xinfo(?)`).all(String(name)).map((c) => `"${String(c.name).replaceAll('"', '""')}"`);
    const select = columns.map((c) => `${c}, typeof(${c})`).join(', ');
    dump[String(name)] = db.prepare(`SELECT ${select} FROM ${quoted} ORDER BY ${columns.join(', ')}`).all().map((row) => Object.values(row));
  }
  return dump;
}

export function dumpFile(path: string): Record<string, unknown[]> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return dumpTables(db);
  } finally {
    db.close();
  }
}

/** Applies `changesets` in order to a copy of the genesis snapshot and returns the copy's path. */
export function replayOntoGenesis(journalDir: string, changesets: Uint8Array[], base = 'genesis.db'): string {
  const target = join(tempDir('ct-replay-'), 'replay.db');
  copyFileSync(join(journalDir, base), target);
  const db = new DatabaseSync(target);
  try {
    for (const changeset of changesets) {
      const ok = db.applyChangeset(changeset, { onConflict: () => { throw new Error('conflict while replaying'); } });
      if (!ok) throw new Error('replay aborted');
    }
  } finally {
    db.close();
  }
  return target;
}
