/**
 * The write path's named crash points (the mechanism, and its environment variables, are in
 * src/crashpoint.ts, shared with the replica's apply points).
 */
import { crashesHereNamed, crashpointNamed } from '../crashpoint.js';

export { crashNow, faultpoint } from '../crashpoint.js';

/** The names of every crash point, in the order a write reaches them. */
export const CRASH_POINTS = [
  'before-begin', 'after-begin', 'after-changeset', 'after-outbox-insert', 'after-outbox-delete', 'after-head-update',
  'after-commit', 'mid-append', 'after-append', 'after-publish', 'after-sync',
] as const;

/**
 * The points of the direct path, which frames larger than the outbox threshold take (appended and
 * fsynced before COMMIT): reached with CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX=0.
 */
export const DIRECT_CRASH_POINTS = ['mid-frame', 'after-frame-write', 'after-fsync'] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number] | (typeof DIRECT_CRASH_POINTS)[number] | 'after-rotate' | 'after-genesis' | 'after-manifest';

export function crashpoint(name: CrashPoint): void {
  crashpointNamed(name);
}

/** Counts a pass of `name`; true when this is the pass to crash at (do the damage, then `crashNow()`). */
export function crashesHere(name: CrashPoint): boolean {
  return crashesHereNamed(name);
}
