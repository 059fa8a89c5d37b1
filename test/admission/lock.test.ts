/** `AdmissionLock` in one process: the API contract, the self-fence on the monotonic clock, and hygiene. */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/errors.js';
import { AdmissionLock, inspectLock, type LockClock } from '../../src/admission/lock.js';
import { readSelfIdentity } from '../../src/admission/process-identity.js';
import { craftLock, craftOwner, tempJournalDir } from './lock-harness.js';

const SHORT = { staleMs: 300, heartbeatMs: 100 } as const;
const held: AdmissionLock[] = [];

async function acquire(journalDir: string, options: Partial<Parameters<typeof AdmissionLock.acquire>[0]> = {}): Promise<AdmissionLock> {
  const lock = await AdmissionLock.acquire({ journalDir, ...SHORT, ...options });
  held.push(lock);
  return lock;
}

/** A clock whose readings the test moves by hand. */
function manualClock(): LockClock & { wallMs: number; monoMs: number } {
  return { wallMs: Date.now(), monoMs: 1_000, wallNow() { return this.wallMs; }, monoNow() { return this.monoMs; } };
}

afterEach(async () => {
  await Promise.all(held.splice(0).map((lock) => lock.release()));
});

describe('AdmissionLock.acquire', () => {
  it('ok: writes owner.json with this process\'s identity and a fresh owner id', async () => {
    const journalDir = tempJournalDir();
    const lock = await acquire(journalDir);
    const self = readSelfIdentity();
    expect(lock.ownerId).toMatch(new RegExp(`^${self.host}:${self.pid}:[0-9a-f]{32}$`));
    const owner = JSON.parse(readFileSync(join(journalDir, 'lock', 'owner.json'), 'utf8')) as Record<string, unknown>;
    expect(owner).toMatchObject({ protocol: 1, ownerId: lock.ownerId, ...self, mode: 'write', staleMs: SHORT.staleMs });
    expect(lock.isValid()).toBe(true);
  });

  it('err: misuse is a TypeError or RangeError', async () => {
    await expect(AdmissionLock.acquire({ journalDir: '' })).rejects.toThrow(TypeError);
    await expect(AdmissionLock.acquire({ journalDir: 'x', staleMs: 50 })).rejects.toThrow(RangeError);
    await expect(AdmissionLock.acquire({ journalDir: 'x', staleMs: 1_500, heartbeatMs: 600 })).rejects.toThrow(RangeError);
    await expect(AdmissionLock.acquire({ journalDir: 'x', timeoutMs: -1 })).rejects.toThrow(RangeError);
    await expect(AdmissionLock.acquire({ journalDir: 'x', signal: {} as AbortSignal })).rejects.toThrow(TypeError);
  });

  it('err: a missing journal directory is IO_ERROR', async () => {
    const error = await AdmissionLock.acquire({ journalDir: join(tempJournalDir(), 'missing') }).catch((e: unknown) => e);
    expect(ChangetrailError.is(error, 'IO_ERROR')).toBe(true);
    expect((error as ChangetrailError<'IO_ERROR'>).details.errno).toBe('ENOENT');
  });

  it('err: timeoutMs 0 tries once', async () => {
    const journalDir = tempJournalDir();
    const first = await acquire(journalDir);
    const error = await AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs: 0 }).catch((e: unknown) => e);
    expect((error as ChangetrailError<'LOCK_TIMEOUT'>).details.holder?.ownerId).toBe(first.ownerId);
  });

  it('err: an abort while waiting rejects with the signal\'s reason and leaves the queue', async () => {
    const journalDir = tempJournalDir();
    await acquire(journalDir);
    const controller = new AbortController();
    const waiting = AdmissionLock.acquire({ journalDir, ...SHORT, signal: controller.signal });
    await sleep(50);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(readdirSync(join(journalDir, 'lock.queue')).filter((name) => /^\d+$/.test(name))).toEqual([]);
    const aborted = AbortSignal.abort(new Error('stop'));
    await expect(AdmissionLock.acquire({ journalDir, signal: aborted })).rejects.toThrow('stop');
  });

  it('ok: hasWaiters() tells the holder that someone is queued', async () => {
    const journalDir = tempJournalDir();
    const lock = await acquire(journalDir);
    expect(lock.hasWaiters()).toBe(false);
    const waiting = AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs: 5_000 });
    await sleep(30);
    expect(lock.hasWaiters()).toBe(true);
    await lock.release();
    held.push(await waiting);
    expect(lock.hasWaiters()).toBe(false);
  });

  it('ok: waiters are admitted in arrival order', async () => {
    const journalDir = tempJournalDir();
    const first = await acquire(journalDir);
    const order: number[] = [];
    const waiters = [1, 2, 3].map(async (n) => {
      await sleep(n * 30);
      const lock = await AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs: 5_000 });
      order.push(n);
      await sleep(10);
      await lock.release();
    });
    await sleep(150);
    await first.release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
  });
});

describe('AdmissionLock.isValid / beat (self-fence)', () => {
  it('ok: the lease runs on the monotonic clock; a beat renews it; wall-clock jumps do not matter', async () => {
    const clock = manualClock();
    const lock = await acquire(tempJournalDir(), { clock });
    clock.wallMs += 3_600_000;
    expect(lock.isValid()).toBe(true);
    clock.monoMs += SHORT.staleMs * 0.8 + 1;
    expect(lock.isValid()).toBe(false);
    expect(await lock.beat()).toBe(true);
    expect(lock.isValid()).toBe(true);
    clock.wallMs -= 7_200_000;
    expect(await lock.beat()).toBe(true);
    expect(lock.isValid()).toBe(true);
  });

  it('ok: the heartbeat keeps the lease alive on its own', async () => {
    const lock = await acquire(tempJournalDir());
    await sleep(SHORT.staleMs * 2);
    expect(lock.isValid()).toBe(true);
  });

  it('ok: a lock replaced by another holder is reported once through onCompromised', async () => {
    const journalDir = tempJournalDir();
    const reports: Array<ChangetrailError<'LOCK_COMPROMISED'>> = [];
    const lock = await acquire(journalDir, { onCompromised: (error) => reports.push(error) });
    renameSync(join(journalDir, 'lock'), join(journalDir, 'lock.stale-test'));
    const other = craftOwner({ ownerId: 'elsewhere:1:00' });
    craftLock(journalDir, other);
    await sleep(SHORT.heartbeatMs * 3);
    expect(reports).toHaveLength(1);
    expect(reports[0]?.details).toMatchObject({ reason: 'lock-foreign', currentHolder: 'elsewhere:1:00', ownerId: lock.ownerId, epoch: null });
    expect(lock.isValid()).toBe(false);
    expect(await lock.beat()).toBe(false);
    await lock.release();
    expect((await inspectLock(journalDir))?.holder?.ownerId).toBe('elsewhere:1:00');
  });
});

describe('AdmissionLock.release', () => {
  it('ok: idempotent, returns the same promise, and frees the lock', async () => {
    const journalDir = tempJournalDir();
    const lock = await acquire(journalDir);
    const release = lock.release();
    expect(lock.release()).toBe(release);
    await release;
    expect(lock.isValid()).toBe(false);
    expect(await lock.beat()).toBe(false);
    expect(await inspectLock(journalDir)).toBe(null);
  });

  it('ok: the released directory is reused, so cycles leave one spare behind', async () => {
    const journalDir = tempJournalDir();
    for (let i = 0; i < 50; i += 1) await (await AdmissionLock.acquire({ journalDir, ...SHORT })).release();
    expect(readdirSync(journalDir).filter((name) => name.startsWith('lock'))).toEqual([expect.stringMatching(/^lock\.spare-[0-9a-f]{16}$/)]);
  });
});
