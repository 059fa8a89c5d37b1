import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { checksum, view } from '../../src/journal/bytes.js';
import { tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup() {
  const result = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE u(k TEXT PRIMARY KEY, n INTEGER)');
  opened.push(result.trail);
  return result;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(() => 'ok', (e) => (e instanceof ChangetrailError ? e.code : `${e?.name}: ${e?.message}`));
}

describe('Trail.verify', () => {
  it('ok: the chain, the snapshots and a replay of the journal all agree with the database', async () => {
    const { trail } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a'), (2, 'b'); INSERT INTO u VALUES ('x', 1)`));
    await trail.migrate('ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 3');
    await trail.write((db) => db.exec(`UPDATE t SET w = 4 WHERE id = 1; DELETE FROM u`));
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 3, entries: 3, replayed: true });
  });

  it('err: a foreign write between two other writers\' commits is refused at admission (rollback mode: change counter)', async () => {
    const { trail, path } = await setup();
    const other = await openTrail(path);
    opened.push(other);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    const foreign = new DatabaseSync(path);
    foreign.exec(`UPDATE u SET n = 1; INSERT INTO u VALUES ('sneaky', 9)`);
    foreign.close();
    expect(await codeOf(other.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`)))).toBe('FOREIGN_WRITE_DETECTED');
    const error = await trail.verify({ replay: true }).then(() => null, (e) => e);
    expect(error?.code).toBe('FOREIGN_WRITE_DETECTED');
    expect(error.details.evidence).toMatch(/: u$/);
  });

  it('err: in WAL mode such a write escapes the per-write check (no change counter) but not verify --replay', async () => {
    const { trail, path } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE u(k TEXT PRIMARY KEY, n INTEGER)', { journalMode: 'wal' });
    opened.push(trail);
    const other = await openTrail(path, { journalMode: 'wal' });
    opened.push(other);
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    const foreign = new DatabaseSync(path);
    foreign.exec(`UPDATE u SET n = 1; INSERT INTO u VALUES ('sneaky', 9)`);
    foreign.close();
    await other.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`));
    const error = await trail.verify({ replay: true }).then(() => null, (e) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect(error.code).toBe('FOREIGN_WRITE_DETECTED');
    expect(error.details.evidence).toMatch(/: u$/);
    // The recovery path: resync, then verify is clean again.
    await trail.resync({ message: 'adopt the manual change' });
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 3, replayed: true });
  });

  it('err: a tampered genesis snapshot is JOURNAL_CHECKSUM_MISMATCH', async () => {
    const { trail } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
    appendFileSync(join(trail.journalDir, 'genesis.db'), Buffer.from('x'));
    expect(await codeOf(trail.verify())).toBe('JOURNAL_CHECKSUM_MISMATCH');
  });

  it('err: an entry rewritten with a valid frame checksum breaks the hash chain', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`), { message: 'honest' });
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`));
    await trail.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    const bytes = new Uint8Array(readFileSync(segment));
    const at = Buffer.from(bytes).indexOf('honest');
    bytes.set(new TextEncoder().encode('forged'), at);
    const frameStart = 40;
    const bodySize = view(bytes).getUint32(frameStart);
    view(bytes).setUint32(frameStart + 12, checksum(bytes.subarray(frameStart, frameStart + 12), bytes.subarray(frameStart + 16, frameStart + 16 + bodySize)));
    writeFileSync(segment, bytes);
    const reopened = await openTrail(path);
    opened.push(reopened);
    const error = await reopened.verify().then(() => null, (e) => e);
    expect(error?.code).toBe('JOURNAL_CHAIN_BROKEN');
    expect(error.details.seq).toBe(2);
  });
});
