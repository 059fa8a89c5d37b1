/**
 * The row formats value by value (ndjson round trip of 64-bit integers, reals with ±Infinity and -0, BLOBs,
 * unicode and non-UTF-8 text), Debezium's envelope field by field, and the resolution of positions.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { buffer } from 'node:stream/consumers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChangetrailError, exportChanges, openTrail, parseExportLine, restoreTo } from '../../src/index.js';
import { SqlText } from '../../src/changeset/index.js';
import { tempDir } from '../helpers/db.js';
import { hashPrefixSpec } from '../helpers/random.js';

const VALUES: [bigint, unknown][] = [
  [1n, 2n ** 63n - 1n], [2n, -(2n ** 63n)], [3n, 2n ** 53n + 1n], [4n, 0.1], [5n, -0], [6n, Infinity], [7n, -Infinity],
  [8n, 1e300], [9n, 5e-324], [10n, 1.0], [11n, Uint8Array.from([0, 1, 254, 255])], [12n, 'héllo ✓ 𝄞 "quoted" \\ \n\t\u0000 end'],
  [13n, null], [14n, new Uint8Array(0)], [15n, ''],
];

async function lines(path: string, options: Parameters<typeof exportChanges>[1]): Promise<unknown[]> {
  const text = (await buffer(exportChanges(path, options))).toString('utf8');
  return text.split('\n').filter((line) => line.length > 0).map(parseExportLine);
}

describe('ndjson', () => {
  let path: string;
  beforeAll(async () => {
    path = join(tempDir('ct-formats-'), 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec('CREATE TABLE v(id INTEGER PRIMARY KEY, x)');
    setup.close();
    const trail = await openTrail(path);
    await trail.write((db) => {
      const insert = db.prepare('INSERT INTO v VALUES (?, ?)');
      for (const [id, value] of VALUES) insert.run(id, value as never);
      db.exec(`INSERT INTO v VALUES (16, CAST(X'ff41' AS TEXT))`);
    }, { actor: 'ann', message: 'values' });
    await trail.write((db) => db.exec(`UPDATE v SET x = 'changed' WHERE id = 1; DELETE FROM v WHERE id = 2`), { actor: 'bob', message: 'second' });
    await trail.close();
  });

  it('ok: round-trips every value exactly, with seq, table, op, key, before, after', async () => {
    const rows = await lines(path, { since: 0, until: 1 }) as { seq: bigint; table: string; op: string; key: { id: bigint }; before: null; after: { id: bigint; x: unknown } }[];
    expect(rows.length).toBe(VALUES.length + 1);
    const byId = new Map(rows.map((row) => [row.key.id, row]));
    for (const [id, value] of VALUES) {
      const row = byId.get(id)!;
      expect(row).toMatchObject({ table: 'v', op: 'insert', before: null });
      expect(Number(row.seq)).toBe(1);
      expect(Object.keys(row.after)).toEqual(['id', 'x']);
      if (value instanceof Uint8Array) expect(Buffer.from(row.after.x as Uint8Array).equals(Buffer.from(value))).toBe(true);
      else expect(Object.is(row.after.x, value) || row.after.x === value, `id ${id}`).toBe(true);
    }
    const text = byId.get(16n)!.after.x;
    expect(text).toBeInstanceOf(SqlText);
    expect(Buffer.from((text as SqlText).bytes).toString('hex')).toBe('ff41');
  });

  it('ok: updates carry the changed columns, deletes the whole row', async () => {
    const rows = await lines(path, { since: 1 }) as { op: string; key: unknown; before: unknown; after: unknown }[];
    expect(rows).toContainEqual({ seq: 2n, table: 'v', op: 'update', indirect: false, key: { id: 1n }, before: { x: 2n ** 63n - 1n }, after: { x: 'changed' } });
    expect(rows).toContainEqual({ seq: 2n, table: 'v', op: 'delete', indirect: false, key: { id: 2n }, before: { id: 2n, x: -(2n ** 63n) }, after: null });
  });

  it('ok: debezium envelope, field by field', async () => {
    const before = Date.now();
    const events = await lines(path, { since: 0, format: 'debezium' }) as Record<string, any>[];
    expect(events.length).toBe(VALUES.length + 3);
    for (const event of events) {
      expect(Object.keys(event)).toEqual(['before', 'after', 'source', 'op', 'ts_ms', 'transaction']);
      expect(Object.keys(event.source)).toEqual(['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'table', 'seq', 'hash', 'actor', 'message']);
      expect(event.source).toMatchObject({ connector: 'changetrail', snapshot: 'false', db: 'app.db', table: 'v' });
      expect(event.source.name).toMatch(/^[0-9a-f]{32}$/);
      expect(event.source.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(event.ts_ms)).toBeGreaterThanOrEqual(before);
      expect(Number(event.ts_ms)).toBeGreaterThanOrEqual(Number(event.source.ts_ms));
      expect(event.transaction.id).toBe(String(event.source.seq));
      expect(['c', 'u', 'd']).toContain(event.op);
    }
    const first = events.filter((event) => event.source.seq === 1n);
    expect(first.map((event) => Number(event.transaction.total_order))).toEqual(first.map((_, index) => index + 1));
    expect(first.map((event) => Number(event.transaction.data_collection_order))).toEqual(first.map((_, index) => index + 1));
    expect(first.every((event) => event.op === 'c' && event.before === null && event.source.actor === 'ann' && event.source.message === 'values')).toBe(true);
    const update = events.find((event) => event.op === 'u')!;
    expect(update).toMatchObject({ before: { id: 1n, x: 2n ** 63n - 1n }, after: { id: 1n, x: 'changed' }, source: { seq: 2n, actor: 'bob' } });
    const deletion = events.find((event) => event.op === 'd')!;
    expect(deletion).toMatchObject({ before: { id: 2n, x: -(2n ** 63n) }, after: null, transaction: { total_order: 2n } });
  });

  it('ok: debezium images are whole rows, read from the state before and after the entry', async () => {
    const wide = join(tempDir('ct-debezium-'), 'app.db');
    const setup = new DatabaseSync(wide);
    setup.exec('CREATE TABLE w(id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c BLOB)');
    setup.close();
    const trail = await openTrail(wide);
    await trail.write((db) => db.exec(`INSERT INTO w VALUES (1, 'a1', 10, X'00'), (2, 'a2', 20, NULL)`));
    await trail.write((db) => db.exec(`UPDATE w SET b = b + 1 WHERE id = 1; UPDATE w SET a = 'A2' WHERE id = 2`));
    await trail.write((db) => db.exec(`UPDATE w SET b = 99 WHERE id = 1; DELETE FROM w WHERE id = 2`));
    await trail.close();
    const events = await lines(wide, { since: 1, format: 'debezium' }) as Record<string, any>[];
    const updates = events.filter((event) => event.op === 'u');
    expect(updates.map((event) => [event.before, event.after])).toEqual([
      [{ id: 1n, a: 'a1', b: 10n, c: new Uint8Array([0]) }, { id: 1n, a: 'a1', b: 11n, c: new Uint8Array([0]) }],
      [{ id: 2n, a: 'a2', b: 20n, c: null }, { id: 2n, a: 'A2', b: 20n, c: null }],
      [{ id: 1n, a: 'a1', b: 11n, c: new Uint8Array([0]) }, { id: 1n, a: 'a1', b: 99n, c: new Uint8Array([0]) }],
    ]);
    expect(events.find((event) => event.op === 'd')).toMatchObject({ before: { id: 2n, a: 'A2', b: 20n, c: null }, after: null });
  });

  it('ok: positions resolve by seq, hash prefix and time; errors are coded', async () => {
    const all = exportChanges(path, { since: 0 });
    all.resume();
    const head = all.until.position;
    expect(head.seq).toBe(2);
    const byHash = exportChanges(path, { since: hashPrefixSpec(head.hash, 8) });
    byHash.resume();
    expect(byHash.since).toMatchObject({ by: 'hash', position: head });
    const byTime = exportChanges(path, { since: 0, until: `@${new Date(Date.now() + 60_000).toISOString()}` });
    byTime.resume();
    expect(byTime.until).toMatchObject({ by: 'time', position: { seq: 2 } });
    const early = exportChanges(path, { since: '@2000-01-01T00:00Z' });
    early.resume();
    expect(early.since.position.seq).toBe(0);
    const codeOf = (spec: string): unknown => {
      try {
        exportChanges(path, { since: spec });
        return null;
      } catch (error) {
        return ChangetrailError.is(error) ? error.code : (error as Error).name;
      }
    };
    expect(codeOf('99')).toBe('POSITION_NOT_FOUND');
    // Digits alone are a seq; one past the head that may be a pasted hash prefix says how to write one.
    expect(() => exportChanges(path, { since: '75106996' })).toThrow(/for a hash prefix write hash:75106996/);
    expect(() => exportChanges(path, { since: 99 })).not.toThrow(/hash:/);
    expect(codeOf('hash:')).toBe('RangeError');
    expect(codeOf('@not a time')).toBe('RangeError');
    const other = head.hash[0] === 'f' ? 'e' : 'f';
    expect(codeOf(`${other}${other}${other}${other}${other}${other}${other}`)).toBe('POSITION_NOT_FOUND');
  });
});

describe('ranges with a resync entry or a shell meta line', () => {
  it('err: resync entries are refused with a hint; restore starts from the snapshot; a "." line in a migration is refused for sql', async () => {
    const path = join(tempDir('ct-resync-'), 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    setup.close();
    const trail = await openTrail(path);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'one')`));
    await trail.migrate(`INSERT INTO t VALUES (2, 'two\n.shell echo pwned\n');`);
    const resync = (await trail.resync())!;
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (3, 'three')`));
    await trail.close();
    const refused = await buffer(exportChanges(path, { since: 0 })).catch((error: unknown) => error);
    expect(ChangetrailError.is(refused, 'EXPORT_RANGE_UNSUPPORTED')).toBe(true);
    expect((refused as ChangetrailError<'EXPORT_RANGE_UNSUPPORTED'>).details).toMatchObject({ seq: resync.seq, kind: 'resync' });
    expect((refused as ChangetrailError<'EXPORT_RANGE_UNSUPPORTED'>).details.hint).toContain(`restore --at ${resync.seq}`);
    const after = await lines(path, { since: resync.seq }) as { key: { id: bigint } }[];
    expect(after.map((row) => row.key.id)).toEqual([3n]);
    const meta = await buffer(exportChanges(path, { since: 0, until: 2, format: 'sql' })).catch((error: unknown) => error);
    expect((meta as ChangetrailError<'EXPORT_RANGE_UNSUPPORTED'>).details).toMatchObject({ seq: 2, kind: 'schema', format: 'sql' });
    const restored = join(tempDir('ct-resync-out-'), 'head.db');
    const result = await restoreTo(path, restored, { at: resync.seq + 1 });
    expect(result.base).toMatchObject({ kind: 'snapshot', seq: resync.seq });
    expect(result.applied).toBe(1);
    const db = new DatabaseSync(restored, { readOnly: true });
    expect(db.prepare('SELECT id FROM t ORDER BY id').all().map((row) => Number(row.id))).toEqual([1, 2, 3]);
    db.close();
  });
});
