/**
 * T8: takeover by proof of death only (write-admission.md §2.8, §9.2 T8). A crafted fresh `owner.json`
 * names (i) this host, a dead pid, same boot: broken at once; (ii) this host, a live unrelated pid: only
 * after the stale time; (iii) another host: only after the stale time; (iv) another boot: broken at once;
 * (v) another pid namespace: never by pid. Plus pid reuse, detected by the process start time.
 */
import { describe, expect, it } from 'vitest';
import { ChangetrailError } from '../../src/errors.js';
import { AdmissionLock } from '../../src/admission/lock.js';
import { proveProcessDead, readProcessStartTime, readSelfIdentity } from '../../src/admission/process-identity.js';
import { craftLock, craftOwner, deadPid, tempJournalDir } from './lock-harness.js';

const SHORT = { staleMs: 300, heartbeatMs: 100 } as const;
/** Well inside the stale time: a takeover that happens within it can only be by proof of death. */
const AT_ONCE_MS = 150;

async function acquiresWithin(journalDir: string, timeoutMs: number): Promise<boolean> {
  try {
    const lock = await AdmissionLock.acquire({ journalDir, ...SHORT, timeoutMs });
    await lock.release();
    return true;
  } catch (error) {
    if (ChangetrailError.is(error, 'LOCK_TIMEOUT')) return false;
    throw error;
  }
}

describe('takeover by identity (T8)', () => {
  it('ok: (i) this host, dead pid, same boot: broken at once', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: await deadPid(), processStartTime: null }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(true);
  });

  it('ok: (ii) this host, live unrelated pid: held until the heartbeat is stale', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: process.ppid, processStartTime: readProcessStartTime(process.ppid) }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(false);
    expect(await acquiresWithin(journalDir, 5_000)).toBe(true);
  });

  it('ok: (ii) a live pid with another start time was reused: broken at once', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: process.ppid, processStartTime: '1' }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(true);
  });

  it('ok: (iii) another host: held until the heartbeat is stale, even with a dead pid', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ host: 'elsewhere.example', pid: await deadPid() }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(false);
    expect(await acquiresWithin(journalDir, 5_000)).toBe(true);
  });

  it('ok: (iv) this host, another boot: broken at once, even with a live pid', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: process.ppid, bootId: '00000000-0000-0000-0000-000000000000' }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(true);
  });

  it('ok: (v) another pid namespace: never broken by pid, only by age', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: await deadPid(), pidNamespace: '1' }));
    expect(await acquiresWithin(journalDir, AT_ONCE_MS)).toBe(false);
    expect(await acquiresWithin(journalDir, 5_000)).toBe(true);
  });

  it('ok: a holder with a larger declared stale time is honoured (mixed settings fail closed)', async () => {
    const journalDir = tempJournalDir();
    craftLock(journalDir, craftOwner({ pid: process.ppid, processStartTime: null, staleMs: 60_000 }));
    expect(await acquiresWithin(journalDir, SHORT.staleMs * 3)).toBe(false);
  });
});

describe('proveProcessDead', () => {
  it('ok: proofs need the same host; the own process is alive', async () => {
    const self = readSelfIdentity();
    expect(proveProcessDead(self, self)).toBe(null);
    const dead = { ...self, pid: await deadPid(), processStartTime: null };
    expect(proveProcessDead(dead, self)).toBe('dead-pid');
    expect(proveProcessDead({ ...dead, host: 'other' }, self)).toBe(null);
    expect(proveProcessDead({ ...self, bootId: 'other' }, self)).toBe('rebooted');
    expect(proveProcessDead({ ...self, bootId: null, pid: process.ppid, processStartTime: '1' }, self)).toBe(null);
  });
});
