import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, type Trail } from '../../src/index.js';
import { dumpDatabase } from '../apply/helpers.js';
import { SCHEMA_SQL } from '../apply/workload.js';
import { tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup(sql: string) {
  const result = await tempTrail(sql);
  opened.push(result.trail);
  return result.trail;
}

function state(trail: Trail): Record<string, string[]> {
  const dump = trail.read((db) => dumpDatabase(db));
  delete dump._changetrail_head;
  delete dump._changetrail_outbox;
  return dump;
}

async function journal(trail: Trail) {
  const seqs = [];
  for await (const entry of trail.entries()) seqs.push([entry.seq, entry.undoes ?? null]);
  return seqs;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(() => 'ok', (e) => (e instanceof ChangetrailError ? e.code : `${e?.name}: ${e?.message}`));
}

describe('Trail.undo', () => {
  it('ok: reverses inserts, updates and deletes as a new entry that records what it undoes', async () => {
    const trail = await setup(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n REAL); INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL)`);
    const before = state(trail);
    const entry = await trail.write((db) => db.exec(`INSERT INTO t VALUES (3, 'c', 3); UPDATE t SET v = 'A', n = -0.0 WHERE id = 1; DELETE FROM t WHERE id = 2`));
    const undo = await trail.undo(entry!.seq, { actor: 'ops' });
    expect(undo).toMatchObject({ seq: 2, undoes: 1, actor: 'ops', message: 'undo #1', tables: [{ table: 't', inserts: 1, updates: 1, deletes: 1 }] });
    expect(state(trail)).toEqual(before);
    expect(await journal(trail)).toEqual([[1, null], [2, 1]]);
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 2, replayed: true });
  });

  it('ok: exact with triggers, an FTS5 index and ON DELETE CASCADE (nothing fires twice)', async () => {
    const trail = await setup(SCHEMA_SQL);
    await trail.write((db) => db.exec(`INSERT INTO authors VALUES (1, 'ada', 'ada@x'); INSERT INTO posts(id, author_id, title, body) VALUES (10, 1, 'alpha beta', 'gamma delta');
      INSERT INTO tags VALUES (10, 'alpha', 1)`));
    const beforeInsert = state(trail);
    const insert = await trail.write((db) => db.exec(`INSERT INTO posts(id, author_id, title, body) VALUES (11, 1, 'epsilon', 'zeta eta')`));
    await trail.undo(insert!.seq);
    expect(state(trail)).toEqual(beforeInsert);
    const cascade = await trail.write((db) => db.exec(`DELETE FROM authors WHERE id = 1`));
    expect(cascade!.tables.map((t) => t.table)).toEqual(expect.arrayContaining(['authors', 'posts', 'tags', 'audit']));
    await trail.undo(cascade!.seq);
    expect(state(trail)).toEqual(beforeInsert);
    const fts = trail.read((db) => db.prepare(`SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'gamma'`).all().map((r) => r.rowid));
    expect(fts).toEqual([10]);
    trail.read((db) => db.prepare(`SELECT * FROM posts_fts WHERE posts_fts MATCH 'zeta'`).all());
    expect(await trail.verify({ replay: true })).toMatchObject({ replayed: true });
  });

  it('err: rows changed since are CHANGESET_CONFLICT; database and journal unchanged', async () => {
    const trail = await setup(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    await trail.write((db) => db.exec(`UPDATE t SET v = 'b' WHERE id = 1`));
    const before = { state: state(trail), journal: await journal(trail) };
    const error = await trail.undo(1).then(() => null, (e) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect(error.code).toBe('CHANGESET_CONFLICT');
    expect(error.details).toMatchObject({ table: 't', seq: 1 });
    expect(state(trail)).toEqual(before.state);
    expect(await journal(trail)).toEqual(before.journal);
    // Undoing the later change first, then the earlier one, works.
    await trail.undo(2);
    await trail.undo(1);
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM t').get()!.n)).toBe(0);
  });

  it('err: an undo that would orphan rows (foreign key) is refused', async () => {
    const trail = await setup(`CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id))`);
    await trail.write((db) => db.exec(`INSERT INTO p VALUES (1)`));
    await trail.write((db) => db.exec(`INSERT INTO c VALUES (1, 1)`));
    const before = state(trail);
    expect(await codeOf(trail.undo(1))).toBe('CHANGESET_CONFLICT');
    expect(state(trail)).toEqual(before);
    expect(trail.read((db) => db.prepare('PRAGMA foreign_keys').get()!.foreign_keys)).toBe(1);
  });

  it('err: schema entries and unknown entries cannot be undone', async () => {
    const trail = await setup(`CREATE TABLE t(id INTEGER PRIMARY KEY)`);
    await trail.migrate('ALTER TABLE t ADD COLUMN v TEXT');
    expect(await codeOf(trail.undo(1))).toBe('UNDO_UNSUPPORTED');
    expect(await codeOf(trail.undo(7))).toBe('ENTRY_NOT_FOUND');
    expect(() => trail.undo(0)).toThrow(RangeError);
    expect(await journal(trail)).toEqual([[1, null]]);
  });

  it('err: a table a later migration reshaped is UNDO_UNSUPPORTED (schema changed since), not a row conflict', async () => {
    const trail = await setup(`CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER); CREATE TABLE u(id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1, 0)`);
    await trail.write((db) => db.exec('UPDATE t SET n = 1'));
    await trail.write((db) => db.exec('INSERT INTO u VALUES (1)'));
    await trail.migrate('ALTER TABLE t ADD COLUMN email TEXT');
    await trail.migrate('DROP TABLE u');
    const before = state(trail);
    for (const [seq, table] of [[1, 't'], [2, 'u']] as const) {
      const error = await trail.undo(seq).then(() => null, (e: unknown) => e);
      expect(ChangetrailError.is(error, 'UNDO_UNSUPPORTED') && error.details).toEqual({ seq, kind: 'write', table, reason: 'schema changed since' });
      expect((await trail.previewUndo(seq)).refusal).toMatchObject({ code: 'UNDO_UNSUPPORTED' });
    }
    expect(state(trail)).toEqual(before);
    expect((await journal(trail)).length).toBe(4);
  });
});
