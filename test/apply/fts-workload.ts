/**
 * A seeded workload over FTS5 external-content indexes kept by triggers (TEXT key, composite key), a regular
 * FTS5 table and a trigger-written audit table, with undos of random earlier entries; and the checks that
 * compare a source with a replay of its journal. Shared by fts-replay.test.ts and fts-replay.stress.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { expect } from 'vitest';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { replayJournal } from '../../src/apply/replay.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { tempTrail } from '../helpers/db.js';
import { mulberry32 as random } from '../helpers/random.js';

export const SCHEMA = `
  CREATE TABLE p(sku TEXT PRIMARY KEY NOT NULL, title TEXT);
  CREATE VIRTUAL TABLE p_fts USING fts5(title, content='p', content_rowid='rowid');
  CREATE TRIGGER p_ai AFTER INSERT ON p BEGIN INSERT INTO p_fts(rowid, title) VALUES (new.rowid, new.title); END;
  CREATE TRIGGER p_ad AFTER DELETE ON p BEGIN INSERT INTO p_fts(p_fts, rowid, title) VALUES ('delete', old.rowid, old.title); END;
  CREATE TRIGGER p_au AFTER UPDATE ON p BEGIN
    INSERT INTO p_fts(p_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
    INSERT INTO p_fts(rowid, title) VALUES (new.rowid, new.title); END;
  CREATE TABLE c(shop TEXT NOT NULL, n INTEGER NOT NULL, body TEXT, note TEXT, PRIMARY KEY (shop, n));
  CREATE VIRTUAL TABLE c_fts USING fts5(body, note, content='c', content_rowid='rowid');
  CREATE TRIGGER c_ai AFTER INSERT ON c BEGIN INSERT INTO c_fts(rowid, body, note) VALUES (new.rowid, new.body, new.note); END;
  CREATE TRIGGER c_ad AFTER DELETE ON c BEGIN INSERT INTO c_fts(c_fts, rowid, body, note) VALUES ('delete', old.rowid, old.body, old.note); END;
  CREATE TRIGGER c_au AFTER UPDATE ON c BEGIN
    INSERT INTO c_fts(c_fts, rowid, body, note) VALUES ('delete', old.rowid, old.body, old.note);
    INSERT INTO c_fts(rowid, body, note) VALUES (new.rowid, new.body, new.note); END;
  CREATE VIRTUAL TABLE docs USING fts5(body);
  CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
  CREATE TRIGGER p_log AFTER DELETE ON p BEGIN INSERT INTO audit(what) VALUES ('deleted ' || old.sku); END;
`;
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'omega', 'sigma', 'kappa', 'zeta'];
const INDEXES = ['p_fts', 'c_fts', 'docs'];


export function answers(db: DatabaseSync): unknown {
  const result: Record<string, unknown> = {};
  for (const index of INDEXES) {
    for (const word of WORDS) {
      result[`${index}:${word}`] = db.prepare(`SELECT rowid, * FROM ${index} WHERE ${index} MATCH ? ORDER BY rowid`).all(word).map((row) => ({ ...row }));
    }
  }
  return result;
}

export function integrity(db: DatabaseSync): Record<string, string> {
  const result: Record<string, string> = {};
  for (const index of INDEXES) {
    try {
      db.exec(`INSERT INTO ${index}(${index}) VALUES ('integrity-check')`);
      result[index] = 'ok';
    } catch (error) {
      result[index] = (error as Error).message;
    }
  }
  result.database = String(db.prepare('PRAGMA integrity_check').get()!.integrity_check);
  return result;
}

export const OK_INTEGRITY = { p_fts: 'ok', c_fts: 'ok', docs: 'ok', database: 'ok' };

export async function workload(trail: Trail, seed: number, steps: number): Promise<{ undone: number; refused: Record<string, number> }> {
  const next = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const text = () => `${pick(WORDS)} ${pick(WORDS)}`;
  const sku = () => `s${Math.floor(next() * 12)}`;
  const shop = () => pick(['north', 'south']);
  let seq = 0;
  let undone = 0;
  const refused: Record<string, number> = {};
  for (let step = 0; step < steps; step++) {
    const op = next();
    if (op < 0.15 && seq > 0) {
      const target = 1 + Math.floor(next() * seq);
      try {
        const entry = await trail.undo(target);
        if (entry !== null) seq = entry.seq;
        undone += 1;
      } catch (error) {
        if (!(error instanceof ChangetrailError)) throw error;
        const reason = error.code === 'CHANGESET_CONFLICT' ? (error.details as { conflict: string }).conflict : error.code;
        refused[reason] = (refused[reason] ?? 0) + 1;
      }
      continue;
    }
    const entry = await trail.write((db) => {
      const a = next();
      // Upserts, not OR REPLACE: REPLACE deletes without firing DELETE triggers, so triggers like p_ad
      // would leave the source's own index stale (a property of the schema, not of changetrail).
      if (a < 0.25) db.prepare('INSERT INTO p VALUES (?, ?) ON CONFLICT (sku) DO UPDATE SET title = excluded.title').run(sku(), text());
      else if (a < 0.35) db.prepare('DELETE FROM p WHERE sku = ?').run(sku());
      else if (a < 0.45) db.prepare('UPDATE p SET title = ? WHERE sku = ?').run(text(), sku());
      else if (a < 0.5) db.prepare('UPDATE OR IGNORE p SET sku = ? WHERE sku = ?').run(sku(), sku());
      else if (a < 0.7) db.prepare('INSERT INTO c VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET body = excluded.body, note = excluded.note').run(shop(), Math.floor(next() * 8), text(), pick(WORDS));
      else if (a < 0.8) db.prepare('DELETE FROM c WHERE shop = ? AND n = ?').run(shop(), Math.floor(next() * 8));
      else if (a < 0.85) db.prepare('UPDATE c SET body = ? WHERE shop = ?').run(text(), shop());
      else if (a < 0.93) db.prepare('INSERT OR REPLACE INTO docs(rowid, body) VALUES (?, ?)').run(1 + Math.floor(next() * 10), text());
      else db.prepare('DELETE FROM docs WHERE rowid = ?').run(1 + Math.floor(next() * 10));
    });
    if (entry !== null) seq = entry.seq;
  }
  return { undone, refused };
}

/** Runs the workload on a fresh trail and checks source, replay and verify --replay agree. */
export async function checkSeed(opened: Trail[], seed: number, steps: number): Promise<void> {
  const { trail, path } = await tempTrail(SCHEMA);
  opened.push(trail);
  const { undone, refused } = await workload(trail, seed, steps);
  if (process.env.DEBUG_UNDO) console.log({ seed, undone, refused });
  expect(undone).toBeGreaterThan(3);
  for (const reason of Object.keys(refused)) expect(['ROW_CHANGED_LATER', 'NOTFOUND', 'FOREIGN_KEY']).toContain(reason);
  expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  const dir = mkdtempSync(join(tmpdir(), 'ct-fts-replay-'));
  try {
    const target = join(dir, 'replay.db');
    replayJournal(openJournal(trail.journalDir, readCommittedHead(path)), target);
    const source = new DatabaseSync(path, { readOnly: true });
    const replay = new DatabaseSync(target);
    try {
      expect(answers(replay)).toEqual(answers(source));
      expect(integrity(replay)).toEqual(OK_INTEGRITY);
    } finally {
      source.close();
      replay.close();
    }
    const writable = new DatabaseSync(path);
    try {
      expect(integrity(writable)).toEqual(OK_INTEGRITY);
    } finally {
      writable.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
