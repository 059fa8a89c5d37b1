/**
 * The follower's named crash points, in the order an apply reaches them (the mechanism and its
 * CHANGETRAIL_CRASH_AT protocol are in src/crashpoint.ts). Tests SIGKILL a real follower at each.
 */
import { crashpointNamed } from '../crashpoint.js';

export const REPLICA_CRASH_POINTS = [
  'replica-before-apply', 'replica-after-begin', 'replica-mid-batch', 'replica-before-position',
  'replica-after-position', 'replica-after-commit', 'replica-rebase-before-backup', 'replica-rebase-mid-backup',
  'replica-rebase-after-backup',
] as const;

export type ReplicaCrashPoint = (typeof REPLICA_CRASH_POINTS)[number];

export function replicaCrashpoint(name: ReplicaCrashPoint): void {
  crashpointNamed(name);
}
