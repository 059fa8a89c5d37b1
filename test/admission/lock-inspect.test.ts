/** `inspectLock` and `breakStaleLock`: one-shot views for status commands and operators. */
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/errors.js';
import { AdmissionLock, breakStaleLock, inspectLock } from '../../src/admission/lock.js';
import { craftLock, craftOwner, deadPid, tempJournalDir } from './lock-harness.js';

const SHORT = { staleMs: 300, heartbeatMs: 100 } as const;
const held: AdmissionLock[] = [];

afterEach(async () => {
  await Promise.all(held.splice(0).map((lock) => lock.release()));
});

describe('inspectLock', () => {
  it('ok: null when nobody holds the lock', async () => {
    expect(await inspectLock(tempJournalDir())).toBe(null);
  });

  it('ok: a live holder is described, not stale', async () => {
    const journalDir = tempJournalDir();
    const lock = await AdmissionLock.acquire({ journalDir, ...SHORT });
    held.push(lock);
    const inspection = await inspectLock(journalDir, { staleMs: SHORT.staleMs });
    expect(inspection).toMatchObject({
      holder: { ownerId: lock.ownerId, pid: process.pid, mode: 'write', protocol: 1, staleMs: SHORT.staleMs },
      ownerState: 'valid', malformed: false, stale: false, staleReason: null, liveReason: 'alive',
    });
    expect(inspection?.heartbeatAgeMs).toBeLessThan(SHORT.staleMs);
  });

  it('ok: a dead holder on this host is stale at once (dead-pid)', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: await deadPid(), processStartTime: null }));
    expect(await inspectLock(journalDir)).toMatchObject({ stale: true, staleReason: 'dead-pid' });
  });

  it('ok: a malformed lock is reported as such, stale only once old', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, '{');
    expect(await inspectLock(journalDir, { staleMs: SHORT.staleMs })).toMatchObject({
      holder: null, ownerState: 'malformed', malformed: true, stale: false, liveReason: 'young',
    });
    await sleep(SHORT.staleMs + 50);
    expect(await inspectLock(journalDir, { staleMs: SHORT.staleMs })).toMatchObject({ stale: true, staleReason: 'expired' });
  });
});

describe('breakStaleLock', () => {
  it('err: refuses a live lock with LOCK_NOT_STALE naming the holder', async () => {
    const journalDir = tempJournalDir();
    const lock = await AdmissionLock.acquire({ journalDir, ...SHORT });
    held.push(lock);
    const error = await breakStaleLock(journalDir, { staleMs: SHORT.staleMs }).catch((e: unknown) => e);
    expect(ChangetrailError.is(error, 'LOCK_NOT_STALE')).toBe(true);
    expect((error as ChangetrailError<'LOCK_NOT_STALE'>).details).toMatchObject({ reason: 'alive', holder: { ownerId: lock.ownerId, pid: process.pid } });
    expect(lock.isValid()).toBe(true);
    expect(await lock.beat()).toBe(true);
  });

  it('err: refuses a young malformed lock', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, null);
    const error = await breakStaleLock(journalDir, { staleMs: SHORT.staleMs }).catch((e: unknown) => e);
    expect((error as ChangetrailError<'LOCK_NOT_STALE'>).details).toEqual({ holder: null, reason: 'young' });
  });

  it('ok: breaks a dead lock, returns what it broke, and leaves no directory behind', async () => {
    const journalDir = tempJournalDir();
    const owner = craftOwner({ pid: await deadPid(), processStartTime: null });
    craftLock(journalDir, owner);
    const broken = await breakStaleLock(journalDir);
    expect(broken).toMatchObject({ stale: true, staleReason: 'dead-pid', holder: { ownerId: owner.ownerId } });
    expect(existsSync(join(journalDir, 'lock'))).toBe(false);
    expect(readdirSync(journalDir).filter((name) => name.startsWith('lock.stale-'))).toEqual([]);
    expect(await breakStaleLock(journalDir)).toBe(null);
  });

  it('ok: the holder of a broken lock finds out at its next heartbeat', async () => {
    const journalDir = tempJournalDir();
    const compromised: unknown[] = [];
    const lock = await AdmissionLock.acquire({ journalDir, ...SHORT, onCompromised: (error) => compromised.push(error) });
    held.push(lock);
    renameSync(join(journalDir, 'lock'), join(journalDir, 'lock.stale-by-hand'));
    expect(await lock.beat()).toBe(false);
    expect(lock.isValid()).toBe(false);
    expect(compromised).toHaveLength(1);
    expect((compromised[0] as ChangetrailError<'LOCK_COMPROMISED'>).details).toMatchObject({ reason: 'lock-missing', ownerId: lock.ownerId });
  });

  it('ok: a breakers\' sub-lock left by a crashed breaker holds takeovers off only until it is old', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: await deadPid(), processStartTime: null }));
    mkdirSync(join(journalDir, 'lock.break'));
    const busy = await breakStaleLock(journalDir, { staleMs: SHORT.staleMs }).catch((e: unknown) => e);
    expect((busy as ChangetrailError<'LOCK_NOT_STALE'>).details.reason).toBe('breaking');
    await sleep(SHORT.staleMs + 50);
    expect(await breakStaleLock(journalDir, { staleMs: SHORT.staleMs })).toMatchObject({ staleReason: 'dead-pid' });
    expect(existsSync(join(journalDir, 'lock.break'))).toBe(false);
  });

  it('ok: old garbage (lock.stale-*, lock.spare-*) is swept', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, null);
    renameSync(join(journalDir, 'lock'), join(journalDir, 'lock.spare-0123'));
    craftLock(journalDir, craftOwner({ pid: await deadPid(), processStartTime: null }));
    await sleep(SHORT.staleMs + 50);
    await breakStaleLock(journalDir, { staleMs: SHORT.staleMs });
    expect(readdirSync(journalDir).filter((name) => name.startsWith('lock'))).toEqual([]);
  });
});
