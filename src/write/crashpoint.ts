/**
 * The write path's named crash points (the mechanism, and its environment variables, are in
 * src/crashpoint.ts, shared with the replica's apply points).
 */
import { crashesHereNamed, crashpointNamed } from '../crashpoint.js';

export { crashNow, faultpoint } from '../crashpoint.js';

/** The names of every crash point, in the order a write reaches them. */
export const CRASH_POINTS = [
  'before-begin', 'after-begin', 'after-changeset', 'mid-frame', 'after-frame-write', 'after-fsync',
  'after-head-update', 'after-commit', 'after-publish',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number] | 'after-rotate' | 'after-genesis' | 'after-manifest';

export function crashpoint(name: CrashPoint): void {
  crashpointNamed(name);
}

/** Counts a pass of `name`; true when this is the pass to crash at (do the damage, then `crashNow()`). */
export function crashesHere(name: CrashPoint): boolean {
  return crashesHereNamed(name);
}
