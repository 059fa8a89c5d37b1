/**
 * TEMPORARY: the shape of src/journal/position.ts (being landed by the foundation work). Deleted as soon
 * as that file is on main; nothing outside src/replica uses it.
 */
import { toHex } from '../journal/bytes.js';

export interface Position {
  readonly journalId: string;
  readonly seq: number;
  readonly hash: string;
}

export function positionOf(journalId: Uint8Array | string, seq: number, hash: Uint8Array | string): Position {
  return Object.freeze({
    journalId: typeof journalId === 'string' ? journalId.toLowerCase() : toHex(journalId),
    seq,
    hash: typeof hash === 'string' ? hash.toLowerCase() : toHex(hash),
  });
}
