/**
 * The schema as of entry N over real journals: migrations replayed on a schema-only copy, resync
 * snapshots resetting it, and `show` labelling old rows with the column names of their time (issue 8
 * item 12), through the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail } from '../../src/index.js';
import { columnRenames, openSchemaHistory, schemaChangeOf, schemaHistoryOf } from '../../src/apply/schema-history.js';
import { findTable } from '../../src/apply/schema.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { forgeEntry } from '../helpers/forge.js';
import { tempTrail } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

async function renamedColumns() {
  const made = await tempTrail('CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)');
  await made.trail.write((db) => db.exec(`INSERT INTO users VALUES (1, 'Grace')`)); // 1
  await made.trail.migrate('ALTER TABLE users ADD COLUMN tier TEXT'); // 2
  await made.trail.write((db) => db.exec(`UPDATE users SET tier = 'gold' WHERE id = 1`)); // 3
  await made.trail.migrate('ALTER TABLE users DROP COLUMN name'); // 4
  await made.trail.write((db) => db.exec(`INSERT INTO users VALUES (2, 'silver')`)); // 5
  return made;
}

function columnsAt(path: string, seq: number): readonly string[] | undefined {
  const history = openSchemaHistory(openJournal(`${path}.changes`, readCommittedHead(path)));
  try {
    return findTable(history.schemaFor(seq), 'users')?.columns;
  } finally {
    history.close();
  }
}

describe('openSchemaHistory', () => {
  it('ok: schemaFor follows ADD COLUMN and DROP COLUMN entry by entry', async () => {
    const { trail, path } = await renamedColumns();
    await trail.close();
    const history = openSchemaHistory(openJournal(`${path}.changes`, readCommittedHead(path)));
    expect(history.changes).toEqual([2, 4]);
    const columns = [0, 1, 2, 3, 4, 5].map((seq) => findTable(history.schemaFor(seq), 'users')?.columns);
    expect(columns).toEqual([['id', 'name'], ['id', 'name'], ['id', 'name', 'tier'], ['id', 'name', 'tier'], ['id', 'tier'], ['id', 'tier']]);
    expect(history.schemaFor(3)).toBe(history.schemaFor(2)); // cached per change
    expect(() => history.schemaFor(6)).toThrow(RangeError);
    history.close();
    history.close();
  });

  it('ok: a resync snapshot resets the schema to the snapshot\'s', async () => {
    const { trail, path } = await renamedColumns();
    await trail.close();
    const raw = new DatabaseSync(path);
    raw.exec('ALTER TABLE users ADD COLUMN note TEXT; CREATE TABLE extra(k TEXT PRIMARY KEY)');
    raw.close();
    const reopened = await openTrail(path);
    const resync = await reopened.resync();
    await reopened.close();
    expect(columnsAt(path, resync!.seq - 1)).toEqual(['id', 'tier']);
    expect(columnsAt(path, resync!.seq)).toEqual(['id', 'tier', 'note']);
  });

  it('err: a forged migration is replayed under the guard (REPLAY_REFUSED)', async () => {
    const { trail, path } = await renamedColumns();
    await trail.close();
    forgeEntry(path, 2, (raw) => { raw.sql = `ALTER TABLE users ADD COLUMN tier TEXT; PRAGMA writable_schema = 1`; });
    const history = openSchemaHistory(openJournal(`${path}.changes`, readCommittedHead(path)));
    expect(history.schemaFor(1).tables.length).toBe(1);
    const error = (() => { try { history.schemaFor(2); } catch (e) { return e; } return null; })();
    expect(ChangetrailError.is(error, 'REPLAY_REFUSED') && error.details).toMatchObject({ action: 'PRAGMA writable_schema', seq: 2 });
    history.close();
  });
});

describe('changetrail show with an older schema', () => {
  it('ok: an entry from before ADD COLUMN tier / DROP COLUMN name shows name, not tier', async () => {
    const { trail, path } = await renamedColumns();
    await trail.close();
    const show = (seq: number) => {
      const result = spawnSync(process.execPath, [MAIN, 'show', path, String(seq), '--json'], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      return JSON.parse(result.stdout).changes;
    };
    expect(show(1)).toEqual([expect.objectContaining({ op: 'insert', after: { id: 1, name: 'Grace' } })]);
    expect(show(3)).toEqual([expect.objectContaining({ op: 'update', before: { tier: null }, after: { tier: 'gold' } })]);
    expect(show(5)).toEqual([expect.objectContaining({ op: 'insert', after: { id: 2, tier: 'silver' } })]);
  });
});

describe('schemaHistoryOf', () => {
  it('ok: from known changes (an audit index), or filled in journal order by a scan, it equals openSchemaHistory', async () => {
    const { trail, path } = await renamedColumns();
    await trail.migrate('ALTER TABLE users RENAME COLUMN tier TO level'); // 6
    await trail.close();
    const journal = openJournal(`${path}.changes`, readCommittedHead(path));
    const full = openSchemaHistory(journal);
    const known = schemaHistoryOf(journal.dir, journal.head.seq, [2, 4, 6].map((seq) => schemaChangeOf(journal.entry(seq))!));
    const scanned = schemaHistoryOf(journal.dir, journal.head.seq, []);
    const columns = (history: typeof full) => [0, 1, 2, 3, 4, 5, 6].map((seq) => findTable(history.schemaFor(seq), 'users')?.columns);
    const byScan: (readonly string[] | undefined)[] = [];
    for (const entry of journal.entries()) {
      const change = schemaChangeOf(entry);
      if (change !== null) scanned.add(change);
      byScan.push(findTable(scanned.schemaFor(entry.seq), 'users')?.columns);
    }
    expect(columns(known)).toEqual(columns(full));
    expect(byScan).toEqual(columns(full).slice(1));
    expect([full.changes, known.changes, scanned.changes]).toEqual([[2, 4, 6], [2, 4, 6], [2, 4, 6]]);
    expect(schemaChangeOf(journal.entry(1))).toBeNull();
    for (const history of [full, known, scanned]) history.close();
  });

  it('err: changes out of order or past the head are a RangeError', async () => {
    const { trail, path } = await renamedColumns();
    await trail.close();
    const journal = openJournal(`${path}.changes`, readCommittedHead(path));
    const history = schemaHistoryOf(journal.dir, journal.head.seq, [schemaChangeOf(journal.entry(4))!]);
    expect(() => history.add(schemaChangeOf(journal.entry(2))!)).toThrow(RangeError);
    expect(() => history.add({ seq: 6, kind: 'schema', source: 'SELECT 1' })).toThrow(RangeError);
    expect(() => schemaHistoryOf(journal.dir, journal.head.seq, [{ seq: 0, kind: 'schema', source: '' }])).toThrow(RangeError);
    history.close();
  });
});

describe('columnRenames', () => {
  it('ok: a name kept is the same column; old and new names at one position are a rename; added and dropped columns are not', () => {
    expect([...columnRenames(['id', 'name', 'tier'], ['id', 'full_name', 'tier'])]).toEqual([['name', 'full_name']]);
    expect([...columnRenames(['id', 'name'], ['id', 'name', 'tier'])]).toEqual([]);
    expect([...columnRenames(['id', 'name', 'tier'], ['id', 'tier'])]).toEqual([]);
    expect([...columnRenames(['a', 'b'], ['b', 'a'])]).toEqual([]);
  });
});
