/**
 * T1: what a waiter makes of `owner.json` (write-admission.md §9.2 T1). Fail closed: a malformed or
 * missing owner record is held while young and retired only once old; an unknown protocol is never broken.
 */
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/errors.js';
import { AdmissionLock, breakStaleLock } from '../../src/admission/lock.js';
import { formatLockOwner, parseLockOwner, parseLockTicket, OWNER_BYTES_MAX, type LockOwner } from '../../src/admission/lock-owner.js';
import { craftLock, craftOwner, tempJournalDir } from './lock-harness.js';

/** Crafted locks use a short stale time so "old" is reached quickly; heartbeat must be ≤ stale / 3. */
const SHORT = { staleMs: 300, heartbeatMs: 100 } as const;

async function acquireOutcome(journalDir: string, timeoutMs: number): Promise<{ code: string | null; waitedMs: number }> {
  const startedAt = performance.now();
  try {
    const lock = await AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs });
    await lock.release();
    return { code: null, waitedMs: performance.now() - startedAt };
  } catch (error) {
    if (!ChangetrailError.is(error)) throw error;
    return { code: error.code, waitedMs: performance.now() - startedAt };
  }
}

describe('parseLockOwner', () => {
  it('ok: a formatted record parses back to itself', () => {
    const owner = craftOwner() as LockOwner;
    expect(parseLockOwner(formatLockOwner(owner))).toEqual({ kind: 'valid', value: owner });
  });

  it('err: unknown protocol version is its own class', () => {
    expect(parseLockOwner(JSON.stringify(craftOwner({ protocol: 2 })))).toEqual({ kind: 'unknown-protocol', protocol: 2 });
    expect(parseLockOwner(JSON.stringify({ protocol: 7, anything: true }))).toEqual({ kind: 'unknown-protocol', protocol: 7 });
  });

  it('err: partial JSON, wrong shapes and oversize records are malformed', () => {
    const text = JSON.stringify(craftOwner());
    for (const cut of [0, 1, 20, text.length - 1]) expect(parseLockOwner(text.slice(0, cut)).kind).toBe('malformed');
    expect(parseLockOwner('[]').kind).toBe('malformed');
    expect(parseLockOwner(JSON.stringify(craftOwner({ protocol: '1' }))).kind).toBe('malformed');
    expect(parseLockOwner(JSON.stringify(craftOwner({ pid: 0 }))).kind).toBe('malformed');
    expect(parseLockOwner(JSON.stringify(craftOwner({ mode: 'read' }))).kind).toBe('malformed');
    expect(parseLockOwner(JSON.stringify(craftOwner({ ownerId: 'x'.repeat(OWNER_BYTES_MAX) }))).kind).toBe('malformed');
    const { bootId: _bootId, ...withoutBootId } = craftOwner();
    expect(parseLockOwner(JSON.stringify(withoutBootId)).kind).toBe('malformed');
  });

  it('ok: tickets have their own schema', () => {
    const { protocol, host, pid, pidNamespace, bootId, processStartTime } = craftOwner();
    expect(parseLockTicket(JSON.stringify({ protocol, host, pid, pidNamespace, bootId, processStartTime, staleMs: 300 })).kind).toBe('valid');
    expect(parseLockTicket(JSON.stringify(craftOwner())).kind).toBe('valid');
    expect(parseLockTicket('{"protocol":1').kind).toBe('malformed');
  });
});

describe('AdmissionLock.acquire on a crafted lock (T1)', () => {
  const malformed: Array<[string, Record<string, unknown> | string | null]> = [
    ['missing owner.json', null],
    ['partial JSON', JSON.stringify(craftOwner()).slice(0, 40)],
    ['empty owner.json', ''],
    ['invalid record', JSON.stringify(craftOwner({ pid: 'one' }))],
  ];

  for (const [what, owner] of malformed) {
    it(`ok: ${what} is held while young and retired once old`, async () => {
      const journalDir = tempJournalDir();
      craftLock(journalDir, owner);
      // Young: within the stale time nobody may take it over.
      expect(await acquireOutcome(journalDir, SHORT.staleMs / 2)).toMatchObject({ code: 'LOCK_TIMEOUT' });
      // Old: taken over, but only after the stale time has passed.
      const outcome = await acquireOutcome(journalDir, 5_000);
      expect(outcome.code).toBe(null);
    });
  }

  it('ok: a live-looking malformed lock is not taken over before the stale time', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, '{"protocol":1');
    const outcome = await acquireOutcome(journalDir, 5_000);
    expect(outcome.code).toBe(null);
    expect(outcome.waitedMs).toBeGreaterThanOrEqual(SHORT.staleMs);
  });

  it('err: a lock of an unknown protocol version is never broken, however old', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ protocol: 2, pid: 999_999_999 }));
    const outcome = await acquireOutcome(journalDir, SHORT.staleMs * 4);
    expect(outcome.code).toBe('LOCK_TIMEOUT');
    const error = await breakStaleLock(journalDir, { staleMs: SHORT.staleMs }).catch((e: unknown) => e);
    expect(ChangetrailError.is(error, 'LOCK_NOT_STALE')).toBe(true);
    expect((error as ChangetrailError<'LOCK_NOT_STALE'>).details).toEqual({ holder: null, reason: 'unknown-protocol' });
  });

  it('err: LOCK_TIMEOUT names the holder and the time waited', async () => {
    const journalDir = tempJournalDir();
    const owner = craftOwner({ pid: process.ppid, processStartTime: null });
    craftLock(journalDir, owner);
    const error = await AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(ChangetrailError.is(error, 'LOCK_TIMEOUT')).toBe(true);
    const { details } = error as ChangetrailError<'LOCK_TIMEOUT'>;
    expect(details.holder).toMatchObject({ ownerId: owner.ownerId, host: owner.host, pid: owner.pid });
    expect(details.waitedMs).toBeGreaterThanOrEqual(50);
  });
});
