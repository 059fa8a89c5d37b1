/**
 * T2: deterministic interleavings (write-admission.md §9.2 T2). A worker started with
 * `CHANGETRAIL_LOCK_TESTPOINT=<point>:<n>:park` stops itself (SIGSTOP) at that point of the protocol; the
 * test arranges what other processes do meanwhile, then resumes it (SIGCONT).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectLock } from '../../src/admission/lock.js';
import { LockWorker, TEST_LOCK, tempJournalDir, waitFor, waitUntilParked } from './lock-harness.js';

const workers: LockWorker[] = [];

async function worker(env: Record<string, string> = {}): Promise<LockWorker> {
  const started = await LockWorker.start(env);
  workers.push(started);
  return started;
}

function parkAt(point: string, journalDir: string): { env: Record<string, string>; parkFile: string } {
  const parkFile = join(journalDir, '..', `parked-${point}`);
  return { env: { CHANGETRAIL_LOCK_TESTPOINT: `${point}:1:park`, CHANGETRAIL_LOCK_PARK_FILE: parkFile }, parkFile };
}

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

const holderOf = async (journalDir: string): Promise<string | undefined> => (await inspectLock(journalDir))?.holder?.ownerId;

describe('interleavings (T2)', () => {
  it('ok: a holder taken over while paused finds it out at release and spares the successor', async () => {
    const journalDir = tempJournalDir();
    const options = { journalDir, ...TEST_LOCK, timeoutMs: 20_000 };
    const park = parkAt('before-release', journalDir);
    const holder = await worker(park.env);
    const successor = await worker();
    expect((await holder.acquire(options)).ok).toBe(true);
    const releasing = holder.request('release');
    await waitUntilParked(holder.pid, park.parkFile);
    const taken = await successor.acquire(options);
    expect(taken.ok).toBe(true);
    holder.kill('SIGCONT');
    expect((await releasing).ok).toBe(true);
    expect(await holderOf(journalDir)).toBe(taken.ownerId);
    expect((await successor.request('beat')).renewed).toBe(true);
    expect(successor.compromised).toEqual([]);
  });

  it('ok: two contenders on the same stale lock: the late one finds it changed and keeps waiting', async () => {
    const journalDir = tempJournalDir();
    const options = { journalDir, ...TEST_LOCK, timeoutMs: 20_000 };
    const park = parkAt('after-stale-verdict', journalDir);
    const dead = await worker();
    const late = await worker(park.env);
    const early = await worker();
    expect((await dead.acquire(options)).ok).toBe(true);
    const lateWaiting = late.acquire(options);
    await sleep(50);
    dead.kill('SIGKILL');
    await dead.exited;
    // The late contender has judged the dead holder's lock stale and is parked before acting on it.
    await waitUntilParked(late.pid, park.parkFile);
    const won = await early.acquire(options);
    expect(won.ok).toBe(true);
    late.kill('SIGCONT');
    await sleep(TEST_LOCK.heartbeatMs * 2);
    expect(await holderOf(journalDir)).toBe(won.ownerId);
    expect((await early.request('beat')).renewed).toBe(true);
    expect(early.compromised).toEqual([]);
    await early.request('release');
    expect((await lateWaiting).ok).toBe(true);
  });

  it('ok: #121 race: a live lock grabbed by a late breaker; the victim detects it at its next heartbeat', async () => {
    const journalDir = tempJournalDir();
    const options = { journalDir, ...TEST_LOCK, timeoutMs: 20_000 };
    const park = parkAt('before-claim-rename', journalDir);
    const victim = await worker();
    const breaker = await worker(park.env);
    expect((await victim.acquire(options)).ok).toBe(true);
    // The victim pauses past the stale time, so the breaker judges its lock expired, takes the breakers'
    // sub-lock, checks the lock once more and parks right before renaming it away.
    victim.kill('SIGSTOP');
    const breaking = breaker.acquire(options);
    await waitUntilParked(breaker.pid, park.parkFile);
    // The victim resumes and renews its lease: from its point of view it still holds the lock.
    victim.kill('SIGCONT');
    expect((await victim.request('beat')).renewed).toBe(true);
    breaker.kill('SIGCONT');
    const taken = await breaking;
    expect(taken.ok).toBe(true);
    // The grabbed live lock is neither given back nor deleted: it is kept aside for diagnosis.
    const grabbed = readdirSync(journalDir).filter((name) => name.startsWith('lock.stale-'));
    expect(grabbed).toHaveLength(1);
    expect(readFileSync(join(journalDir, grabbed[0] as string, 'owner.json'), 'utf8')).toContain(victim.pid.toString());
    await waitFor(() => victim.compromised.length > 0, 'the victim to notice', TEST_LOCK.heartbeatMs * 10);
    expect(victim.compromised[0]).toMatchObject({ details: { reason: 'lock-foreign', currentHolder: taken.ownerId } });
    expect((await victim.request('isValid')).valid).toBe(false);
    await victim.request('release');
    expect(await holderOf(journalDir)).toBe(taken.ownerId);
  });

  it('ok: a holder paused between its release check and the rename: the displaced successor is compromised', async () => {
    // The one window no rename-based protocol closes (write-admission.md §3.9): the database epoch fences
    // the successor's writes meanwhile. The displaced lock is kept aside, not reused or deleted.
    const journalDir = tempJournalDir();
    const options = { journalDir, ...TEST_LOCK, timeoutMs: 20_000 };
    const park = parkAt('before-release-rename', journalDir);
    const holder = await worker(park.env);
    const successor = await worker();
    expect((await holder.acquire(options)).ok).toBe(true);
    const releasing = holder.request('release');
    await waitUntilParked(holder.pid, park.parkFile);
    const taken = await successor.acquire(options);
    expect(taken.ok).toBe(true);
    holder.kill('SIGCONT');
    expect((await releasing).ok).toBe(true);
    expect(existsSync(join(journalDir, 'lock'))).toBe(false);
    await waitFor(() => successor.compromised.length > 0, 'the successor to notice', TEST_LOCK.heartbeatMs * 10);
    expect(successor.compromised[0]).toMatchObject({ details: { reason: 'lock-missing' } });
    const displaced = readdirSync(journalDir).filter((name) => name.startsWith('lock.spare-'))
      .filter((name) => readFileSync(join(journalDir, name, 'owner.json'), 'utf8').includes(taken.ownerId as string));
    expect(displaced).toHaveLength(1);
  });
});
