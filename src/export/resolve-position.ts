/** The position resolver lives in src/journal (one resolver for export, restore, diff and log). */
export { resolvePosition } from '../journal/resolve-position.js';
export type { PositionSource, PositionSpec, ResolvedPosition } from '../journal/resolve-position.js';
