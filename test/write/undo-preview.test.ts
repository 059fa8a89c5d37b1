/** trail.previewUndo and `changetrail undo --dry-run` (issue 13): what undo would restore, or why it would be refused. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { type Trail } from '../../src/index.js';
import { tempDir, tempTrail } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const SCHEMA = `CREATE TABLE p(sku TEXT PRIMARY KEY NOT NULL, title TEXT);
  CREATE VIRTUAL TABLE p_fts USING fts5(title, content='p', content_rowid='rowid');
  CREATE TRIGGER p_ai AFTER INSERT ON p BEGIN INSERT INTO p_fts(rowid,title) VALUES(new.rowid,new.title); END;
  CREATE TRIGGER p_ad AFTER DELETE ON p BEGIN INSERT INTO p_fts(p_fts,rowid,title) VALUES('delete',old.rowid,old.title); END;
  CREATE TRIGGER p_au AFTER UPDATE ON p BEGIN INSERT INTO p_fts(p_fts,rowid,title) VALUES('delete',old.rowid,old.title);
    INSERT INTO p_fts(rowid,title) VALUES(new.rowid,new.title); END;
  INSERT INTO p VALUES('a','alpha'),('b','beta');`;

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function headSeq(trail: Trail): Promise<number> {
  return (await trail.status()).headSeq;
}

describe('Trail.previewUndo', () => {
  it('ok: lists the rows it would restore and changes nothing', async () => {
    const { trail } = await tempTrail(SCHEMA);
    opened.push(trail);
    const entry = await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'; UPDATE p SET title = 'bravo' WHERE sku = 'b'`));
    await trail.write((db) => db.exec(`INSERT INTO p VALUES ('c', 'gamma')`));
    const before = trail.read((db) => db.prepare('SELECT rowid, * FROM p ORDER BY sku').all());
    const preview = await trail.previewUndo(entry!.seq);
    expect(preview).toMatchObject({ seq: entry!.seq, possible: true, conflicts: [], refusal: null, derived: [{ table: 'p_fts', module: 'fts5', treatment: 'reindexed' }] });
    expect(preview.restores).toEqual(expect.arrayContaining([
      { table: 'p', op: 'insert', indirect: false, key: { sku: 'a' }, before: null, after: { sku: 'a', title: 'alpha' } },
      { table: 'p', op: 'update', indirect: false, key: { sku: 'b' }, before: { title: 'bravo' }, after: { title: 'beta' } },
    ]));
    expect(trail.read((db) => db.prepare('SELECT rowid, * FROM p ORDER BY sku').all())).toEqual(before);
    expect(await headSeq(trail)).toBe(2);
    expect(await trail.undo(entry!.seq)).toMatchObject({ seq: 3, undoes: entry!.seq });
  });

  it('err: a refused undo names every later entry and key that conflicts', async () => {
    const { trail } = await tempTrail(SCHEMA);
    opened.push(trail);
    const entry = await trail.write((db) => db.exec(`UPDATE p SET title = 'x' WHERE sku IN ('a', 'b')`));
    const first = await trail.write((db) => db.exec(`UPDATE p SET title = 'y' WHERE sku = 'b'`));
    const second = await trail.write((db) => db.exec(`DELETE FROM p WHERE sku = 'a'`));
    const preview = await trail.previewUndo(entry!.seq);
    expect(preview).toMatchObject({
      possible: false,
      refusal: { code: 'CHANGESET_CONFLICT', details: { conflict: 'ROW_CHANGED_LATER', laterSeq: first!.seq } },
      conflicts: [{ table: 'p', key: { sku: 'b' }, laterSeq: first!.seq }, { table: 'p', key: { sku: 'a' }, laterSeq: second!.seq }],
    });
    expect(preview.restores.length).toBe(2);
    expect(await headSeq(trail)).toBe(3);
  });
});

describe('changetrail undo --dry-run', () => {
  it('ok: --json prints the preview; exit 0 when possible, 1 when refused; nothing is journaled', async () => {
    const path = join(tempDir('ct-undo-cli-'), 'app.db');
    const db = new DatabaseSync(path);
    db.exec(SCHEMA);
    db.close();
    const cli = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
    expect(cli('init', path).status).toBe(0);
    expect(cli('exec', path, `DELETE FROM p WHERE sku = 'a'`).status).toBe(0);
    const possible = cli('undo', path, '1', '--dry-run', '--json');
    expect(possible.status, possible.stderr).toBe(0);
    expect(JSON.parse(possible.stdout)).toMatchObject({ seq: 1, possible: true, restores: [{ table: 'p', op: 'insert', key: { sku: 'a' } }] });
    expect(cli('exec', path, `INSERT INTO p VALUES ('a', 'again')`).status).toBe(0);
    const refused = cli('undo', path, '1', '--dry-run', '--json');
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ possible: false, conflicts: [{ table: 'p', key: { sku: 'a' }, laterSeq: 2 }] });
    const human = cli('undo', path, '1', '--dry-run');
    expect(human.stdout).toContain('conflict: entry 2 changed p {"sku":"a"}');
    const log = cli('log', path, '--json');
    expect(log.stdout.trim().split('\n').length).toBe(2);
  });
});
