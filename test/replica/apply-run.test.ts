/**
 * The catch-up apply of a run of write entries as one concatenated changeset (src/replica/applier.ts):
 * the replica must end with the rows applying the entries one by one gives, including when SQLite's apply
 * retries a change that hit a UNIQUE constraint after the rest of the run (where a later entry needed it
 * applied: the run falls back to entry by entry and goes on), and a real conflict still names its entry.
 */
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/index.js';
import { digestFile, expectReplicaEquals, primariesAndReplicas, type Primary } from './helpers.js';

const SCHEMA = `
CREATE TABLE tags(id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE);
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO tags VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');
`;

const { primary, replicaOf } = primariesAndReplicas(SCHEMA);

function sql(p: Primary, text: string): Promise<unknown> {
  return p.trail.write((db) => db.exec(text));
}

describe('replica catch-up: a run of entries applied as one changeset', () => {
  it('ok: a label moved within one entry (applied only after the row freeing it) and changed again by the next entry', async () => {
    const p = await primary();
    const r = await replicaOf(p);
    // Each entry moves a label onto a row whose label the same entry frees first. SQLite's apply meets
    // the changes in its own order, so whichever comes first hits the UNIQUE index and is retried after
    // the rest of the run; the next entry changes the moved label again (it needs the retried change).
    // Both orders of rows are written, so at least one run has its retried change first.
    await sql(p, "UPDATE tags SET label = 'x' WHERE id = 1; UPDATE tags SET label = 'a' WHERE id = 2");
    await sql(p, "UPDATE tags SET label = 'a2' WHERE id = 2");
    await sql(p, "UPDATE tags SET label = 'y' WHERE id = 4; UPDATE tags SET label = 'd' WHERE id = 3");
    await sql(p, "UPDATE tags SET label = 'd2' WHERE id = 3");
    const position = await r.sync();
    expect(position.seq).toBe(4);
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: one row inserted, updated, deleted and inserted again across entries, two rows in one entry, many entries on one row', async () => {
    const p = await primary();
    const r = await replicaOf(p);
    await sql(p, "INSERT INTO kv VALUES ('r', 1)");
    await sql(p, "UPDATE kv SET v = 2 WHERE k = 'r'; INSERT INTO kv VALUES ('s', 'one'); UPDATE kv SET v = 'two' WHERE k = 's'");
    await sql(p, "DELETE FROM kv WHERE k = 'r'");
    await sql(p, "INSERT INTO kv VALUES ('r', x'00ff')");
    for (let i = 0; i < 50; i++) await sql(p, `UPDATE kv SET v = ${i} WHERE k = 's'; INSERT INTO tags(label) VALUES ('t${i}')`);
    await sql(p, "DELETE FROM tags WHERE label LIKE 't1%'");
    await r.sync();
    expectReplicaEquals(p.path, p.replicaPath);
    expect(r.read((db) => db.prepare("SELECT v FROM kv WHERE k = 'r'").get())).toEqual({ v: Uint8Array.of(0, 255) });
  });

  it('err: a row changed behind the counter stops the run at its entry (CHANGESET_CONFLICT naming it), nothing of the run applied', async () => {
    const p = await primary();
    const r = await replicaOf(p);
    await sql(p, "INSERT INTO kv VALUES ('r', 1)");
    await r.sync();
    await r.close();
    const tamper = new DatabaseSync(p.replicaPath);
    tamper.exec("UPDATE kv SET v = 'tampered' WHERE k = 'r'");
    tamper.exec('UPDATE _changetrail_replica SET change_counter = NULL');
    tamper.close();
    for (let i = 0; i < 5; i++) await sql(p, `INSERT INTO tags(label) VALUES ('n${i}')`); // entries 2..6
    await sql(p, "UPDATE kv SET v = 2 WHERE k = 'r'"); // entry 7
    await sql(p, "INSERT INTO tags(label) VALUES ('after')"); // entry 8
    const digest = digestFile(p.replicaPath);
    const reopened = await replicaOf(p);
    const error = await reopened.sync().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect((error as ChangetrailError).code).toBe('CHANGESET_CONFLICT');
    expect((error as ChangetrailError).details).toMatchObject({ table: 'kv', seq: 7 });
    expect(reopened.position.seq).toBe(1);
    expect(digestFile(p.replicaPath)).toEqual(digest);
  });
});
