/**
 * A seeded audit workload: writes by several actors, a cascade (indirect deletes), a trigger-maintained
 * counter (indirect updates), migrations (ADD, RENAME and DROP COLUMN, a table rebuild), undo, and a
 * foreign write recorded by resync. After every entry it keeps each table's rows keyed by PRIMARY KEY,
 * which is what history, blame and diff are checked against.
 */
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { formatRowKey } from '../../src/audit/row-key.js';
import { tempDir } from '../helpers/db.js';
import { mulberry32 } from '../helpers/random.js';

export type Row = Record<string, unknown>;
/** table → key → row (all columns by name). */
export type State = Map<string, Map<string, Row>>;

export const SETUP = `
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
CREATE TABLE parts(item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE, label TEXT NOT NULL, weight REAL, PRIMARY KEY (label, item_id)) WITHOUT ROWID;
CREATE TABLE counters(k TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL);
CREATE TABLE kv(k TEXT PRIMARY KEY NOT NULL, v);
CREATE TRIGGER items_au AFTER UPDATE ON items BEGIN UPDATE counters SET n = n + 1 WHERE k = 'item-updates'; END;
INSERT INTO counters VALUES ('item-updates', 0), ('writes', 0);
INSERT INTO items VALUES (1, 'genesis-one', 1), (2, 'genesis-two', 2);
INSERT INTO kv VALUES ('g', 'genesis');
`;

/** Migrations at fixed steps, with the column renames they make (table → old → new). */
export const MIGRATIONS = new Map<number, { sql: string; renames?: Record<string, Record<string, string>>; added?: Record<string, Record<string, unknown>> }>([
  // The UPDATE is a change to those rows (recorded in the schema entry's changeset); the DEFAULT is not.
  [12, { sql: `ALTER TABLE items ADD COLUMN color TEXT DEFAULT 'none'; UPDATE items SET color = 'red' WHERE id % 3 = 0;`, added: { items: { color: 'none' } } }],
  [24, { sql: `ALTER TABLE items RENAME COLUMN qty TO quantity;`, renames: { items: { qty: 'quantity' } } }],
  [36, { sql: `CREATE TABLE kv_new(k TEXT PRIMARY KEY NOT NULL, v, touched INTEGER NOT NULL DEFAULT 0);
    INSERT INTO kv_new(k, v) SELECT k, v FROM kv; DROP TABLE kv; ALTER TABLE kv_new RENAME TO kv;`, added: { kv: { touched: 0n } } }],
  [48, { sql: `ALTER TABLE parts DROP COLUMN weight;` }],
]);

export interface Recorded {
  seq: number;
  kind: string;
  actor: string | null;
  state: State;
  renames: Record<string, Record<string, string>>;
  /** Columns the entry added, with the value existing rows got (their DEFAULT). */
  added: Record<string, Record<string, unknown>>;
}

export interface Workload {
  path: string;
  journalDir: string;
  /** recorded[i] is the state after entry i (recorded[0]: genesis). */
  recorded: Recorded[];
}

export const ACTORS = ['alice', 'bob', 'carol'];

export const random = mulberry32;

export function readState(db: DatabaseSync): State {
  const state: State = new Map();
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_changetrail%' ORDER BY name`).all();
  for (const { name } of tables) {
    const table = String(name);
    const columns = db.prepare('SELECT name, pk FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid').all(table) as { name: string; pk: number }[];
    const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const rows = new Map<string, Row>();
    const select = db.prepare(`SELECT * FROM "${table}"`);
    select.setReadBigInts(true);
    for (const row of select.all()) rows.set(formatRowKey(pk.map((c) => row[c] as never)), { ...row });
    state.set(table, rows);
  }
  return state;
}

function readFile(path: string): State {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return readState(db);
  } finally {
    db.close();
  }
}

/** Runs `steps` transactions; returns the database and the state after every entry. */
export async function runWorkload(seed: number, steps: number): Promise<Workload> {
  const rand = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const dir = tempDir('ct-audit-');
  const path = join(dir, 'app.db');
  const setup = new DatabaseSync(path);
  setup.exec(SETUP);
  setup.close();
  const trail = await openTrail(path, { lock: { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 } });
  const recorded: Recorded[] = [{ seq: 0, kind: 'genesis', actor: null, state: readFile(path), renames: {}, added: {} }];
  try {
    for (let step = 1; step <= steps; step++) {
      const migration = MIGRATIONS.get(step);
      const actor = pick(ACTORS);
      let entry;
      if (migration !== undefined) {
        entry = await trail.migrate(migration.sql, { actor, message: `migration ${step}` });
      } else if (step % 17 === 0) {
        entry = await foreignWriteThenResync(trail, path, step, actor);
      } else if (step % 7 === 0 && recorded.length > 3) {
        entry = await tryUndo(trail, recorded, rand, actor);
      } else {
        entry = await trail.write((db) => randomWrite(db, rand, step), { actor, message: `step ${step}`, meta: { step, team: step % 2 === 0 ? 'even' : 'odd' } });
      }
      if (entry === null) continue;
      recorded.push({ seq: entry.seq, kind: entry.kind, actor: entry.actor, state: readFile(path), renames: migration?.renames ?? {}, added: migration?.added ?? {} });
    }
  } finally {
    await trail.close();
  }
  return { path, journalDir: `${path}.changes`, recorded };
}

function randomWrite(db: DatabaseSync, rand: () => number, step: number): void {
  const id = 1 + Math.floor(rand() * 12);
  const choice = rand();
  // Every write changes something: a write whose net changeset is empty is not journaled, and the writer
  // then takes its own no-op commit for a foreign write (seen with INSERT OR REPLACE of equal values).
  db.prepare(`UPDATE counters SET n = n + 1 WHERE k = 'writes'`).run();
  const hasQuantity = db.prepare(`SELECT 1 FROM pragma_table_info('items') WHERE name = 'quantity'`).get() !== undefined;
  const qty = hasQuantity ? 'quantity' : 'qty';
  if (choice < 0.3) {
    db.prepare(`INSERT INTO items(id, name, ${qty}) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name`).run(id, `item-${step}`, step);
  } else if (choice < 0.55) {
    db.prepare(`UPDATE items SET ${qty} = ${qty} + 1, name = ? WHERE id = ?`).run(`renamed-${step}`, id);
  } else if (choice < 0.7) {
    db.prepare('DELETE FROM items WHERE id = ?').run(id); // cascades to parts: indirect deletes
  } else if (choice < 0.85) {
    const item = db.prepare('SELECT id FROM items ORDER BY id LIMIT 1 OFFSET ?').get(Math.floor(rand() * 4));
    if (item !== undefined) db.prepare(`INSERT OR REPLACE INTO parts(item_id, label) VALUES (?, ?)`).run(item.id as number, `p${Math.floor(rand() * 3)}`);
  } else {
    db.prepare('INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)').run(`k${Math.floor(rand() * 5)}`, rand() < 0.2 ? new Uint8Array([step, 0, 255]) : `v${step}`);
  }
}

async function foreignWriteThenResync(trail: Trail, path: string, step: number, actor: string) {
  const foreign = new DatabaseSync(path, { timeout: 5000 });
  foreign.exec('BEGIN IMMEDIATE');
  foreign.prepare(`UPDATE items SET name = ? WHERE id = (SELECT min(id) FROM items)`).run(`foreign-${step}`);
  foreign.prepare(`INSERT OR REPLACE INTO kv(k, v) VALUES ('foreign', ?)`).run(step);
  foreign.exec('COMMIT');
  foreign.close();
  return trail.resync({ actor, message: `resync ${step}` });
}

async function tryUndo(trail: Trail, recorded: Recorded[], rand: () => number, actor: string) {
  const writes = recorded.filter((r) => r.kind === 'write');
  // The latest write usually undoes cleanly; an older one often conflicts with later writes (refused).
  const target = rand() < 0.6 ? writes.at(-1) : writes[Math.floor(rand() * writes.length)];
  if (target === undefined) return null;
  try {
    return await trail.undo(target.seq, { actor });
  } catch (error) {
    // Refused: a later entry changed the row, or a later migration reshaped the table.
    if (ChangetrailError.is(error, 'CHANGESET_CONFLICT') || ChangetrailError.is(error, 'UNDO_UNSUPPORTED')) return null;
    throw error;
  }
}

/** Rows that differ from one recorded state to the next: the test's own record of who changed what. */
export function changedRows(before: State, after: State, renames: Record<string, Record<string, string>>, added: Record<string, Record<string, unknown>> = {}): Map<string, { table: string; key: string; op: string; row: Row | null }> {
  const changes = new Map<string, { table: string; key: string; op: string; row: Row | null }>();
  for (const table of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(table) ?? new Map();
    const b = after.get(table) ?? new Map();
    for (const key of new Set([...a.keys(), ...b.keys()])) {
      const rowA = a.get(key);
      const rowB = b.get(key);
      let op: string | null = null;
      if (rowA === undefined) op = 'insert';
      else if (rowB === undefined) op = 'delete';
      else {
        const renamed = renames[table] ?? {};
        for (const [column, value] of Object.entries(rowA)) {
          const name = renamed[column] ?? column;
          if (Object.hasOwn(rowB, name) && !sameValue(value, rowB[name])) op = 'update';
        }
        // A column the entry added: existing rows got its DEFAULT; any other value is the entry's change.
        for (const [column, fallback] of Object.entries(added[table] ?? {})) {
          if (Object.hasOwn(rowB, column) && !sameValue(fallback, rowB[column])) op = 'update';
        }
      }
      if (op !== null) changes.set(`${table.toLowerCase()} ${key}`, { table, key, op, row: rowB ?? null });
    }
  }
  return changes;
}

export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  return a === b;
}
