/**
 * openDatabaseReader: a tracked database opened for reading leaves no file behind (no empty -wal/-shm on
 * a WAL database nobody has open), never writes, reads consistent snapshots beside a writer (whose own
 * -wal/-shm may stay when it closes while a reader is open, as SQLite leaves them), and never drops the
 * POSIX locks another connection of this process holds on the file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { openDatabaseReader } from '../../src/journal/database-reader.js';
import { tempDir } from '../helpers/db.js';

function database(journalMode: 'wal' | 'delete'): string {
  const path = join(tempDir('ct-reader-'), 'app.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = ${journalMode}; CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
    INSERT INTO account VALUES (1, 500), (2, 500)`);
  db.close();
  return path;
}

function files(path: string): string[] {
  return readdirSync(dirname(path)).sort();
}

function total(db: DatabaseSync): number {
  db.exec('BEGIN');
  try {
    const first = Number(db.prepare('SELECT balance FROM account WHERE id = 1').get()!.balance);
    const second = Number(db.prepare('SELECT balance FROM account WHERE id = 2').get()!.balance);
    return first + second;
  } finally {
    db.exec('COMMIT');
  }
}

describe('openDatabaseReader', () => {
  for (const mode of ['wal', 'delete'] as const) {
    it(`ok: a ${mode} database nobody has open: read, no write, no file left behind`, () => {
      const path = database(mode);
      expect(files(path)).toEqual(['app.db']);
      const db = openDatabaseReader(path);
      expect(total(db)).toBe(1000);
      expect(String(db.prepare('PRAGMA journal_mode').get()!.journal_mode)).toBe(mode);
      expect(() => db.exec('UPDATE account SET balance = 0')).toThrow(/readonly|read-only/i);
      db.close();
      expect(files(path)).toEqual(['app.db']);
      const check = new DatabaseSync(path, { readOnly: true });
      expect(total(check)).toBe(1000);
      check.close();
    });
  }

  it('err: a missing file is not created', () => {
    const path = join(tempDir('ct-reader-'), 'missing.db');
    expect(() => openDatabaseReader(path)).toThrow();
    expect(readdirSync(dirname(path))).toEqual([]);
  });

  it('ok: beside a writer process, every read sees whole transactions', async () => {
    const path = database('wal');
    const writer = spawn(process.execPath, ['-e', `
      const { DatabaseSync } = require('node:sqlite');
      const db = new DatabaseSync(${JSON.stringify(path)}, { timeout: 10000 });
      const move = db.prepare('UPDATE account SET balance = balance + ? WHERE id = ?');
      for (let i = 0; i < 400; i++) {
        db.exec('BEGIN IMMEDIATE');
        move.run(-1 - (i % 5), 1);
        move.run(1 + (i % 5), 2);
        db.exec('COMMIT');
      }
      db.close();`], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));
    let reads = 0;
    while (running || reads === 0) {
      const db = openDatabaseReader(path, { timeoutMs: 10_000 });
      try {
        for (let i = 0; i < 20; i++, reads++) expect(total(db)).toBe(1000);
      } finally {
        db.close();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exited).toBe(0);
    expect(reads).toBeGreaterThan(0);
    const check = new DatabaseSync(path, { readOnly: true });
    expect(total(check)).toBe(1000);
    expect(Number(check.prepare('SELECT balance FROM account WHERE id = 2').get()!.balance)).toBe(500 + 400 * 3);
    check.close();
  });

  it('ok: keeps the locks of another connection in this process (the header is read through its descriptor)', () => {
    const path = database('delete');
    const holder = new DatabaseSync(path);
    holder.exec('BEGIN');
    holder.prepare('SELECT count(*) FROM account').get(); // SHARED lock held from here
    try {
      openDatabaseReader(path).close();
      // Had a descriptor of the file been closed, the SHARED lock would be gone and this commit would pass.
      const other = spawnSync(process.execPath, ['-e', `
        const { DatabaseSync } = require('node:sqlite');
        const db = new DatabaseSync(${JSON.stringify(path)}, { timeout: 300 });
        try { db.exec('UPDATE account SET balance = 0'); console.log('committed'); } catch (e) { console.log(e.errcode); }`], { encoding: 'utf8' });
      expect(other.stdout.trim()).toBe('5'); // SQLITE_BUSY
    } finally {
      holder.exec('COMMIT');
      holder.close();
    }
  });
});
