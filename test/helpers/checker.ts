/**
 * The invariant checker run after every crash or contention scenario (write-admission.md §9.1), on a
 * database no writer is using any more.
 */
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'vitest';
import { openTrail, openTrailReader } from '../../src/index.js';
import { databaseWith, dumpFile, replayOntoGenesis } from './db.js';

export const WORKLOAD_SCHEMA = `
  CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
  INSERT INTO counter VALUES (1, 0);
  CREATE TABLE rows (op TEXT NOT NULL, k INTEGER NOT NULL, payload TEXT, PRIMARY KEY (op, k)) WITHOUT ROWID;
`;

/** A new database holding {@link WORKLOAD_SCHEMA} (no journal yet): what the writer fixtures write to. */
export function workloadDatabase(prefix: string): string {
  return databaseWith(WORKLOAD_SCHEMA, prefix);
}

/** seq → hash of every committed entry, read once no writer is running (to check what readers saw). */
export async function committedHashes(path: string): Promise<Map<number, string>> {
  const committed = new Map<number, string>();
  const reader = await openTrailReader(path);
  try {
    for (const entry of reader.entries()) committed.set(entry.seq, entry.hash);
  } finally {
    reader.close();
  }
  return committed;
}

export interface CheckResult {
  headSeq: number;
  ops: Map<string, number>;
}

/** C1 integrity, C3 acknowledged writes present, C4 all-or-nothing, C5 counter, C6 journal, C7 replay. */
export async function checkInvariants(path: string, acked: Iterable<string>, rowsPerWrite: number): Promise<CheckResult> {
  const db = new DatabaseSync(path); // opening through SQLite first rolls back any hot journal
  expect(db.prepare('PRAGMA integrity_check').get()!.integrity_check).toBe('ok');
  const ops = new Map<string, number>();
  for (const row of db.prepare('SELECT op, count(*) AS n FROM rows GROUP BY op').all()) ops.set(String(row.op), Number(row.n));
  const counter = Number(db.prepare('SELECT n FROM counter').get()!.n);
  // A leftover -journal must not be hot: a reader rolled any hot one back, so a writer proceeds.
  db.exec('BEGIN IMMEDIATE; ROLLBACK');
  db.close();
  for (const op of acked) expect(ops.get(op), `acknowledged ${op}`).toBe(rowsPerWrite);
  for (const [op, n] of ops) expect(n, `rows of ${op}`).toBe(rowsPerWrite);
  expect(counter).toBe(ops.size);

  const trail = await openTrail(path);
  try {
    const entries = [];
    for await (const entry of trail.entries()) entries.push(entry);
    const status = await trail.status();
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: status.headSeq }, (_, i) => i + 1));
    expect(entries.length === 0 ? undefined : entries.at(-1)!.hash).toBe(entries.length === 0 ? undefined : status.headHash);
    expect(new Set(entries.map((e) => e.message))).toEqual(new Set(ops.keys()));
    expect(dumpFile(replayOntoGenesis(trail.journalDir, entries.map((e) => e.changeset)))).toEqual(dumpFile(path));
    return { headSeq: status.headSeq, ops };
  } finally {
    await trail.close();
  }
}
