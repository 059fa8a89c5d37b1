/**
 * A position in a journal: which history (`journalId`), how far (`seq`), and the hash of the entry there
 * (`hash`; at seq 0 the chain root, the `prevHash` of entry 1). The one shape every consumer speaks:
 * status, replicas, exports, backups and audit stamps. Like ltx's `Pos{TXID, PostApplyChecksum}`, a
 * position is checked, not trusted: resuming from one verifies that the journal has that hash at that seq.
 *
 * Printed and parsed one way: `<journalId>/<seq>/<hash>` (lowercase hex, seq in decimal).
 */
import { HASH_SIZE, JOURNAL_ID_SIZE, SEQ_MAX } from './format.js';
import { toHex } from './bytes.js';

/** A position in a journal. Fields are lowercase hex (`journalId`: 32 digits, `hash`: 64 digits). */
export interface Position {
  readonly journalId: string;
  readonly seq: number;
  readonly hash: string;
}

const JOURNAL_ID_HEX = new RegExp(`^[0-9a-f]{${JOURNAL_ID_SIZE * 2}}$`);
const HASH_HEX = new RegExp(`^[0-9a-f]{${HASH_SIZE * 2}}$`);
const FORMATTED = /^([0-9a-f]+)\/(\d{1,16})\/([0-9a-f]+)$/;

/**
 * Makes a frozen position from raw or hex parts.
 *
 * @example
 * positionOf(identity.manifest.journalId, 0, identity.rootHash);
 * @throws TypeError when a part has the wrong size or form.
 */
export function positionOf(journalId: Uint8Array | string, seq: number, hash: Uint8Array | string): Position {
  const position = {
    journalId: typeof journalId === 'string' ? journalId.toLowerCase() : toHex(journalId),
    seq,
    hash: typeof hash === 'string' ? hash.toLowerCase() : toHex(hash),
  };
  validatePosition(position);
  return Object.freeze(position);
}

/** Throws TypeError unless `value` is a well-formed {@link Position}. */
export function validatePosition(value: unknown): asserts value is Position {
  const p = value as Partial<Position> | null;
  if (p === null || typeof p !== 'object') throw new TypeError('position: expected { journalId, seq, hash }');
  if (typeof p.journalId !== 'string' || !JOURNAL_ID_HEX.test(p.journalId)) throw new TypeError('position: journalId must be 32 lowercase hex digits');
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0 || p.seq > SEQ_MAX) throw new TypeError('position: seq must be an integer >= 0');
  if (typeof p.hash !== 'string' || !HASH_HEX.test(p.hash)) throw new TypeError('position: hash must be 64 lowercase hex digits');
}

/** True when both name the same entry of the same journal. */
export function positionsEqual(a: Position, b: Position): boolean {
  return a.journalId === b.journalId && a.seq === b.seq && a.hash === b.hash;
}

/** `<journalId>/<seq>/<hash>`, the one printed form (round-trips through {@link parsePosition}). */
export function formatPosition(position: Position): string {
  return `${position.journalId}/${position.seq}/${position.hash}`;
}

/**
 * Parses {@link formatPosition}'s output.
 *
 * @throws TypeError for any other string.
 */
export function parsePosition(text: string): Position {
  const match = FORMATTED.exec(text);
  if (match === null) throw new TypeError('parsePosition: expected <journalId>/<seq>/<hash>');
  return positionOf(match[1]!, Number(match[2]), match[3]!);
}
