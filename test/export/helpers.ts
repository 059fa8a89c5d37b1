/**
 * Trails built from seeded workloads for the export tests, restores to compare against, and SQLite's own
 * changeset apply (sqlite-wasm) as the oracle for the `changeset` format.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { digestTables } from '../../src/apply/digest.js';
import { createRandom } from '../apply/helpers.js';
import { MIGRATIONS, SCHEMA_SQL, randomOperation } from '../apply/workload.js';
import { tempDir } from '../helpers/db.js';

export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface BuiltTrail {
  dir: string;
  path: string;
  headSeq: number;
  /** Seqs of the schema entries. */
  schemaSeqs: number[];
}

const LOCK = { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 };

/**
 * The replay workload of test/apply (triggers, FTS5 external content, R*Tree, cascades, migrations with
 * non-deterministic DML) run through a real trail, with undo of random earlier entries mixed in.
 */
export async function buildTriggerTrail(seed: number, transactionCount: number): Promise<BuiltTrail> {
  const dir = tempDir('ct-export-');
  const path = join(dir, 'app.db');
  const setup = new DatabaseSync(path);
  setup.exec(SCHEMA_SQL);
  setup.close();
  const trail = await openTrail(path, { lock: LOCK });
  const random = createRandom(seed);
  const migrated = new Set<number>();
  const schemaSeqs: number[] = [];
  try {
    for (let index = 1; index <= transactionCount; index++) {
      const migration = MIGRATIONS.get(index);
      if (migration !== undefined) {
        migrated.add(index);
        const entry = await trail.migrate(migration);
        if (entry !== null) schemaSeqs.push(entry.seq);
        continue;
      }
      if (index % 7 === 0) await tryUndo(trail, random);
      const operationCount = 1 + random.int(6);
      await trail.write((db) => {
        for (let operation = 0; operation < operationCount; operation++) randomOperation(db, random, migrated);
      });
    }
    return { dir, path, headSeq: (await trail.status()).headSeq, schemaSeqs };
  } finally {
    await trail.close();
  }
}

async function tryUndo(trail: Trail, random: ReturnType<typeof createRandom>): Promise<void> {
  const headSeq = (await trail.status()).headSeq;
  if (headSeq === 0) return;
  try {
    await trail.undo(1 + random.int(headSeq));
  } catch (error) {
    if (!ChangetrailError.is(error, 'CHANGESET_CONFLICT') && !ChangetrailError.is(error, 'UNDO_UNSUPPORTED')) throw error;
  }
}

const PLAIN_SCHEMA = `
CREATE TABLE owners(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL);
CREATE TABLE items(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE, label TEXT, data BLOB);
CREATE TABLE pairs(a TEXT NOT NULL, b INTEGER NOT NULL, v, PRIMARY KEY (b, a)) WITHOUT ROWID;
`;

/** A schema without triggers (foreign-key cascades only), for SQLite's own apply. */
export async function buildPlainTrail(seed: number, transactionCount: number): Promise<BuiltTrail> {
  const dir = tempDir('ct-export-plain-');
  const path = join(dir, 'app.db');
  const setup = new DatabaseSync(path);
  setup.exec(PLAIN_SCHEMA);
  setup.close();
  const trail = await openTrail(path, { lock: LOCK });
  const random = createRandom(seed);
  try {
    for (let index = 1; index <= transactionCount; index++) {
      if (index % 9 === 0) await tryUndo(trail, random);
      await trail.write((db) => {
        for (let operation = 0; operation < 1 + random.int(5); operation++) plainOperation(db, random);
      });
    }
    return { dir, path, headSeq: (await trail.status()).headSeq, schemaSeqs: [] };
  } finally {
    await trail.close();
  }
}

function plainOperation(db: DatabaseSync, random: ReturnType<typeof createRandom>): void {
  const owner = BigInt(1 + random.int(12));
  switch (random.int(7)) {
    case 0:
    case 1:
      db.prepare('INSERT OR REPLACE INTO owners VALUES (?, ?, ?)').run(owner, `owner ${random.int(100)} ✓`, random.chance(0.3) ? null : random.next() * 1e6);
      return;
    case 2:
      db.prepare('DELETE FROM owners WHERE id = ?').run(owner);
      return;
    case 3:
      if (db.prepare('SELECT 1 FROM owners WHERE id = ?').get(owner) !== undefined) {
        db.prepare('INSERT INTO items(owner, label, data) VALUES (?, ?, ?)').run(owner, random.chance(0.5) ? null : `l${random.int(9)}`, Uint8Array.from([random.int(256), 0, 255]));
      }
      return;
    case 4:
      db.prepare('UPDATE items SET label = ? WHERE id % 3 = ?').run(`u${random.int(9)}`, BigInt(random.int(3)));
      return;
    case 5:
      db.prepare('INSERT OR REPLACE INTO pairs VALUES (?, ?, ?)').run(`k${random.int(5)}`, BigInt(random.int(4)), random.chance(0.5) ? 2n ** 62n + BigInt(random.int(9)) : 'x');
      return;
    default:
      db.prepare('DELETE FROM pairs WHERE b = ?').run(BigInt(random.int(4)));
  }
}

/** SHA-256 per recorded table (shadow tables included) of a database file. */
export function digestFile(path: string): Record<string, string> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Object.fromEntries(digestTables(db));
  } finally {
    db.close();
  }
}

/** Runs a script with the stock sqlite3 shell. */
export function runSqlite3(databasePath: string, scriptPath: string): string {
  return execFileSync('sqlite3', [databasePath], { input: readFileSync(scriptPath), encoding: 'utf8' });
}

/** Runs the built CLI; returns its exit code and output. */
export function runCli(args: string[], input?: Buffer): { status: number; stdout: Buffer; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [CLI, ...args], { ...(input === undefined ? {} : { input }), maxBuffer: 1 << 30 });
    return { status: 0, stdout, stderr: '' };
  } catch (error) {
    const failed = error as { status: number; stdout: Buffer; stderr: Buffer };
    return { status: failed.status, stdout: failed.stdout, stderr: failed.stderr.toString() };
  }
}

interface WasmSqlite {
  capi: Record<string, (...args: unknown[]) => number>;
  wasm: { alloc(size: number): number; dealloc(pointer: number): void; heap8u(): Uint8Array; allocFromTypedArray(bytes: Uint8Array): number };
  oo1: { DB: new (name: string) => { pointer: number; close(): void } };
}

let loading: Promise<WasmSqlite> | undefined;

function loadWasm(): Promise<WasmSqlite> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmBinary = readFileSync(require.resolve('@sqlite.org/sqlite-wasm/sqlite3.wasm'));
    const globals = globalThis as Record<string, unknown>;
    globals.self ??= globalThis;
    globals.location ??= new URL('file:///');
    const init = sqlite3InitModule as unknown as (options: object) => Promise<WasmSqlite>;
    return init({ wasmBinary, print: () => {}, printErr: () => {} });
  })();
  return loading;
}

const SQLITE_DESERIALIZE_FREEONCLOSE = 1;
const SQLITE_DESERIALIZE_RESIZEABLE = 2;
const SQLITE_CHANGESET_ABORT = 2;

/**
 * Applies `changeset` to the database file `path` with SQLite's own `sqlite3changeset_apply` (sqlite-wasm
 * 3.54.1, every conflict aborts) and writes the result back. Returns the C result code and conflict types.
 */
export async function applyWithSqlite(path: string, changeset: Uint8Array): Promise<{ rc: number; conflicts: number[] }> {
  const sqlite3 = await loadWasm();
  const db = new sqlite3.oo1.DB(':memory:');
  try {
    const bytes = new Uint8Array(readFileSync(path));
    const pointer = sqlite3.wasm.allocFromTypedArray(bytes);
    const deserialized = sqlite3.capi.sqlite3_deserialize!(db.pointer, 'main', pointer, bytes.length, bytes.length,
      SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
    if (deserialized !== 0) throw new Error(`sqlite3_deserialize: ${deserialized}`);
    const input = sqlite3.wasm.allocFromTypedArray(changeset.length === 0 ? new Uint8Array(1) : new Uint8Array(changeset));
    const conflicts: number[] = [];
    let rc: number;
    try {
      rc = sqlite3.capi.sqlite3changeset_apply!(db.pointer, changeset.length, input, 0, (_context: number, type: number) => {
        conflicts.push(type);
        return SQLITE_CHANGESET_ABORT;
      }, 0);
    } finally {
      sqlite3.wasm.dealloc(input);
    }
    const exported = (sqlite3.capi as unknown as { sqlite3_js_db_export(db: number): Uint8Array }).sqlite3_js_db_export(db.pointer);
    writeFileSync(path, exported);
    return { rc, conflicts };
  } finally {
    db.close();
  }
}
