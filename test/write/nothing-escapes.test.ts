/**
 * Issue "nothing escapes the journal", end to end through the real write path: a randomized workload
 * (triggers, FTS5 external content, R*Tree, cascades, generated columns, WITHOUT ROWID, migrations) run
 * with trail.write / trail.migrate, then the journal replayed exactly onto the genesis snapshot equals
 * the database in every table, shadow tables included; and every refusal leaves database and journal
 * unchanged.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { applyEntryExactly } from '../../src/apply/apply-entry.js';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { createRandom, dumpDatabase } from '../apply/helpers.js';
import { FTS_QUERIES, MIGRATIONS, SCHEMA_SQL, randomOperation } from '../apply/workload.js';
import { tempDir, tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup(sql: string) {
  const result = await tempTrail(sql);
  opened.push(result.trail);
  return result;
}

function ftsAnswers(db: DatabaseSync): string[] {
  const statement = db.prepare('SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid');
  return FTS_QUERIES.map((query) => `${query}=${statement.all(query).map((row) => String(row.rowid)).join(',')}`);
}

/** The user-visible state: every table but changetrail's own (the head row and the outbox). */
function userState(db: DatabaseSync): Record<string, string[]> {
  const dump = dumpDatabase(db);
  delete dump._changetrail_head;
  delete dump._changetrail_outbox;
  dump['#schema'] = dump['#schema']!.filter((row) => !row.includes('_changetrail_head') && !row.includes('_changetrail_outbox'));
  return dump;
}

async function journalState(trail: Trail) {
  const entries = [];
  for await (const entry of trail.entries()) entries.push(entry);
  return { head: (await trail.status()).headSeq, hashes: entries.map((e) => e.hash) };
}

describe('nothing escapes the journal (through trail.write and trail.migrate)', () => {
  for (const seed of [0x7a11_0001, 0x7a11_0002]) {
    it(`ok: randomized workload with migrations replays exactly onto genesis (seed ${seed.toString(16)})`, async () => {
      const { trail, path } = await setup(SCHEMA_SQL);
      const random = createRandom(seed);
      const migrated = new Set<number>();
      for (let index = 1; index <= 44; index++) {
        const migration = MIGRATIONS.get(index);
        if (migration !== undefined) {
          migrated.add(index);
          await trail.migrate(migration, { message: `migration ${index}` });
          continue;
        }
        const count = 1 + random.int(6);
        await trail.write((db) => {
          for (let i = 0; i < count; i++) randomOperation(db, random, migrated);
        });
      }
      const replicaPath = join(tempDir('ct-replica-'), 'replica.db');
      copyFileSync(join(trail.journalDir, 'genesis.db'), replicaPath);
      const replica = new DatabaseSync(replicaPath);
      try {
        let kinds = new Set<string>();
        for await (const entry of trail.entries()) {
          kinds.add(entry.kind);
          applyEntryExactly(replica, { kind: entry.kind === 'schema' ? 'schema' : 'write', changeset: entry.changeset, ...(entry.sql === undefined ? {} : { sql: entry.sql }), seq: entry.seq });
        }
        expect(kinds).toEqual(new Set(['write', 'schema']));
        const source = trail.read((db) => ({ state: userState(db), fts: ftsAnswers(db) }));
        expect(userState(replica), `seed ${seed}`).toEqual(source.state);
        expect(ftsAnswers(replica)).toEqual(source.fts);
        replica.exec(`INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')`);
        expect(replica.prepare('PRAGMA integrity_check').get()!.integrity_check).toBe('ok');
      } finally {
        replica.close();
      }
      expect(path).toBeTruthy();
    });
  }

  it('ok: ALTER TABLE ADD COLUMN through migrate, then writes that use the new column', async () => {
    const { trail } = await setup('CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT)');
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'x')`));
    const migration = await trail.migrate(`ALTER TABLE t ADD COLUMN b INTEGER DEFAULT 7`, { message: 'add b' });
    expect(migration).toMatchObject({ seq: 2, kind: 'schema', sql: 'ALTER TABLE t ADD COLUMN b INTEGER DEFAULT 7' });
    const write = await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'y', 9); UPDATE t SET b = 8 WHERE id = 1`));
    expect(write!.tables).toEqual([{ table: 't', inserts: 1, updates: 1, deletes: 0 }]);
    expect(trail.read((db) => db.prepare('SELECT id, a, b FROM t ORDER BY id').all().map((r) => Object.values(r)))).toEqual([[1, 'x', 8], [2, 'y', 9]]);
  });

  const refusals: [string, string, string][] = [
    ['a table without a PRIMARY KEY', 'TABLE_NOT_CAPTURABLE', `INSERT INTO nopk VALUES (1)`],
    ['a NULL primary key', 'NULL_PRIMARY_KEY', `INSERT INTO textpk VALUES (NULL, 'v')`],
    ['DDL inside a write', 'SCHEMA_CHANGE_IN_WRITE', `CREATE INDEX i ON textpk(v)`],
    ['changetrail\'s own head row', 'TABLE_NOT_CAPTURABLE', `UPDATE _changetrail_head SET seq = 99`],
    ['changetrail\'s outbox', 'TABLE_NOT_CAPTURABLE', `DELETE FROM _changetrail_outbox`],
  ];
  for (const [what, code, sql] of refusals) {
    it(`err: ${what} is refused with ${code}; database and journal unchanged`, async () => {
      const { trail } = await setup('CREATE TABLE nopk(x); CREATE TABLE textpk(k TEXT PRIMARY KEY, v TEXT)');
      await trail.write((db) => db.exec(`INSERT INTO textpk VALUES ('a', 'b')`));
      const before = { state: trail.read((db) => dumpDatabase(db)), journal: await journalState(trail) };
      const error = await trail.write((db) => db.exec(`INSERT INTO textpk VALUES ('c', 'd'); ${sql}`)).then(() => null, (e) => e);
      expect(error).toBeInstanceOf(ChangetrailError);
      expect(error.code).toBe(code);
      expect(trail.read((db) => dumpDatabase(db))).toEqual(before.state);
      expect(await journalState(trail)).toEqual(before.journal);
    });
  }

  it('ok: the first use of an R*Tree or FTS5 table on a connection may be a read (their modules prepare writes when they connect)', async () => {
    const { trail, path } = await setup(`CREATE VIRTUAL TABLE geo USING rtree(id, minx, maxx); INSERT INTO geo VALUES (1, 0, 5);
      CREATE VIRTUAL TABLE ft USING fts5(body); INSERT INTO ft VALUES ('hello world')`);
    await trail.close();
    const { openTrail } = await import('../../src/index.js');
    const fresh = await openTrail(path);
    opened.push(fresh);
    expect(fresh.read((db) => db.prepare('SELECT id FROM geo WHERE minx <= 1 AND maxx >= 1').all().map((r) => r.id))).toEqual([1]);
    expect(fresh.read((db) => db.prepare(`SELECT count(*) AS n FROM ft WHERE ft MATCH 'hello'`).get()!.n)).toBe(1);
    expect(() => fresh.read((db) => db.exec('INSERT INTO geo VALUES (2, 1, 2)'))).toThrow(ChangetrailError);
    await fresh.write((db) => db.exec('INSERT INTO geo VALUES (2, 1, 2)'));
    expect(fresh.read((db) => db.prepare('SELECT count(*) AS n FROM geo').get()!.n)).toBe(2);
  });

  it('err: a read that tries to write is refused', async () => {
    const { trail } = await setup('CREATE TABLE textpk(k TEXT PRIMARY KEY, v TEXT)');
    expect(() => trail.read((db) => db.exec(`INSERT INTO textpk VALUES ('a', 'b')`))).toThrow(ChangetrailError);
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM textpk').get()!.n)).toBe(0);
  });

  it('err: a failing migration changes nothing and journals nothing', async () => {
    const { trail } = await setup('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    const before = { state: trail.read((db) => dumpDatabase(db)), journal: await journalState(trail) };
    const error = await trail.migrate(`ALTER TABLE t ADD COLUMN c; CREATE TABLE broken(`).then(() => null, (e) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect(error.code).toBe('SQLITE_ERROR');
    expect(trail.read((db) => dumpDatabase(db))).toEqual(before.state);
    expect(await journalState(trail)).toEqual(before.journal);
  });
});
