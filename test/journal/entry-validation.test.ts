/**
 * One entry validation for writer and readers (issue 8 item 5, §2; issue 9 §2.5): the writer refuses
 * (ENTRY_INVALID, nothing committed) what readers reject, and crafted entries with a valid CRC and chain
 * are JOURNAL_MALFORMED with seq and offset, never a raw error. Real trails, forged files, the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { META_DEPTH_MAX } from '../../src/journal/entry.js';
import { forgeEntry, replaceBytes, type RawBody } from '../helpers/forge.js';
import { tempTrail } from '../helpers/db.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { n: value };
  return value;
}

async function refusal(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  return Promise.resolve().then(typeof promise === 'function' ? promise : () => promise).then(() => null, (error: unknown) => (error instanceof ChangetrailError ? { code: error.code, details: error.details } : error));
}

async function rowCount(trail: Trail): Promise<number> {
  return Number(trail.read((db) => db.prepare('SELECT count(*) AS n FROM t').get()!.n));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('writer refuses what readers reject', () => {
  it('err: a clock before 1970 or past 9999 is ENTRY_INVALID and nothing is committed', async () => {
    const { trail } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    for (const now of [-86_400_000, 9e15]) {
      vi.spyOn(Date, 'now').mockReturnValue(now);
      expect(await refusal(trail.write((db) => db.exec('INSERT INTO t VALUES (1)')))).toMatchObject({ code: 'ENTRY_INVALID', details: { field: 'time' } });
      vi.restoreAllMocks();
      expect((await trail.status()).headSeq).toBe(0);
      expect(await rowCount(trail)).toBe(0);
    }
    expect(await trail.write((db) => db.exec('INSERT INTO t VALUES (1)'))).toMatchObject({ seq: 1 });
    await trail.close();
  });

  it(`err: meta nested 3,000 deep (limit ${META_DEPTH_MAX}) is ENTRY_INVALID; at the limit it is written and read back`, async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    expect(await refusal(() => trail.write((db) => db.exec('INSERT INTO t VALUES (1)'), { meta: nested(3000) as never }))).toMatchObject({ code: 'ENTRY_INVALID', details: { field: 'meta' } });
    expect(await refusal(() => trail.write((db) => db.exec('INSERT INTO t VALUES (1)'), { meta: nested(META_DEPTH_MAX + 1) as never }))).toMatchObject({ code: 'ENTRY_INVALID' });
    expect(await rowCount(trail)).toBe(0);
    const entry = await trail.write((db) => db.exec('INSERT INTO t VALUES (1)'), { meta: nested(META_DEPTH_MAX) as never });
    await trail.close();
    const reopened = await openTrail(path);
    for await (const read of reopened.entries()) expect(read.meta).toEqual(entry!.meta);
    await reopened.close();
  });

  it('err: a lone surrogate in message, actor or meta is ENTRY_INVALID; astral characters round-trip exactly', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    const write = (options: object) => trail.write((db) => db.exec('INSERT INTO t VALUES (1)'), options);
    expect(await refusal(write({ message: 'a\uD800b' }))).toMatchObject({ code: 'ENTRY_INVALID', details: { field: 'message' } });
    expect(await refusal(write({ actor: '\uDC00' }))).toMatchObject({ code: 'ENTRY_INVALID', details: { field: 'actor' } });
    expect(await refusal(write({ meta: { note: 'x\uD83D' } }))).toMatchObject({ code: 'ENTRY_INVALID' });
    expect(await refusal(write({ meta: { ['k\uDFFF']: 1 } }))).toMatchObject({ code: 'ENTRY_INVALID' });
    expect(await rowCount(trail)).toBe(0);
    const written = await write({ message: 'ok \u{1F600} \uD83D\uDE00', actor: 'z\u00E9', meta: { '\u{1F4A9}': ['\u{10FFFF}'] } });
    await trail.close();
    const reopened = await openTrail(path);
    for await (const read of reopened.entries()) {
      expect({ message: read.message, actor: read.actor, meta: read.meta, hash: read.hash })
        .toEqual({ message: written!.message, actor: written!.actor, meta: written!.meta, hash: written!.hash });
    }
    await reopened.close();
  });
});

describe('crafted entries with a valid CRC and chain', () => {
  async function forged(mutate: (raw: RawBody) => void): Promise<{ path: string; offset: number }> {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    for (let i = 1; i <= 3; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i})`));
    await trail.close();
    forgeEntry(path, 2, mutate);
    return { path, offset: frameOffset(path, 2) };
  }

  function frameOffset(path: string, seq: number): number {
    const bytes = new Uint8Array(readFileSync(`${path}.changes/00000000000000000001.seg`));
    const data = new DataView(bytes.buffer);
    let offset = 40;
    for (let s = 1; s < seq; s++) offset += 16 + data.getUint32(offset);
    return offset;
  }

  const cases: [string, (raw: RawBody) => void][] = [
    ['a resync entry without snapshot', (raw) => { raw.kind = 'resync'; }],
    ['a schema entry without sql', (raw) => { raw.kind = 'schema'; }],
    ['a snapshot naming manifest', (raw) => { raw.kind = 'resync'; raw.snapshot = { file: 'manifest', sha256: new Uint8Array(32), size: 80 }; }],
    ['time 9e15', (raw) => { raw.time = 9e15; }],
    ['a negative time', (raw) => { raw.time = -1; }],
    ['sql on a write entry', (raw) => { raw.sql = 'DROP TABLE t'; }],
    ['undoes of a later entry', (raw) => { raw.undoes = 3; }],
  ];
  for (const [name, mutate] of cases) {
    it(`err: ${name} is JOURNAL_MALFORMED with seq and offset`, async () => {
      const { path, offset } = await forged(mutate);
      const trail = await openTrail(path);
      try {
        const error = await refusal((async () => { for await (const _ of trail.entries()) { /* read */ } })());
        expect(error).toMatchObject({ code: 'JOURNAL_MALFORMED', details: { seq: 2, offset } });
      } finally {
        await trail.close();
      }
    });
  }

  it('err: meta nested 3,000 deep (bytes no msgpack encoder here can produce) is JOURNAL_MALFORMED with seq and offset', async () => {
    const marker = new TextEncoder().encode('@@meta@@');
    const deep = new Uint8Array([...Array.from({ length: 3000 }, () => [0x81, 0xa1, 0x6e]).flat(), 0x81, 0xa4, 0x6c, 0x65, 0x61, 0x66, 0x01]);
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY)');
    for (let i = 1; i <= 3; i++) await trail.write((db) => db.exec(`INSERT INTO t VALUES (${i})`));
    await trail.close();
    forgeEntry(path, 2, (raw) => { raw.meta = '@@meta@@'; }, { patch: (body) => replaceBytes(body, new Uint8Array([0xa8, ...marker]), deep) });
    const reopened = await openTrail(path);
    try {
      const error = await refusal((async () => { for await (const _ of reopened.entries({ from: 2, to: 2 })) { /* read */ } })());
      expect(error).toMatchObject({ code: 'JOURNAL_MALFORMED', details: { seq: 2, offset: frameOffset(path, 2) } });
    } finally {
      await reopened.close();
    }
  });

  it('err: the CLI reports a crafted time as JOURNAL_MALFORMED, not "Invalid time value"', async () => {
    const { path } = await forged((raw) => { raw.time = 9e15; });
    const log = spawnSync(process.execPath, [MAIN, 'log', path, '--json'], { encoding: 'utf8' });
    expect(log.status).toBe(1);
    expect(JSON.parse(log.stderr).error).toMatchObject({ code: 'JOURNAL_MALFORMED', details: { seq: 2 } });
  });
});
