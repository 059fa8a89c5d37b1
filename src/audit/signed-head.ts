/**
 * Signing the committed head, and proving later that a journal still contains a signed head and extends
 * it. The hash chain alone proves that a journal is internally consistent; it cannot tell a history from
 * a consistent rewrite of it (every entry re-hashed and re-chained, the head row updated to match). A
 * signed head kept elsewhere can: the rewritten journal has another entry at the signed seq.
 */
import { ChangetrailError } from '../errors.js';
import { bytesEqual, fromHex, toHex } from '../journal/bytes.js';
import type { Position } from '../journal/position.js';
import { openAuditJournal } from './audit-journal.js';
import { checkNoteSignature, parseSignedNote, signHead, type SigningKey, type VerifierKey } from './signed-note.js';

/** What `verifySignedHead` proved. */
export interface SignedHeadReport {
  /** The signed head (origin = journal id, size = seq, root = entry hash). */
  readonly signed: Position;
  /** The journal's committed head now; it extends `signed` by `head.seq - signed.seq` entries. */
  readonly head: Position;
  /** The signature line verified (its key name), or null when no key was given (the signature was not checked). */
  readonly signedBy: string | null;
}

/** A C2SP signed note of the committed head of `databasePath`'s journal. */
export function signCommittedHead(databasePath: string, key: SigningKey): { note: string; head: Position } {
  const journal = openAuditJournal(databasePath);
  return { note: signHead(journal.head, key), head: journal.head };
}

/**
 * Proves that the journal of `databasePath` contains the signed head and extends it: the note's origin is
 * this journal, the journal holds at least `size` entries, and entry `size` (proven to chain to the
 * committed head) has the signed hash. With `key`, the note must carry a valid signature by it.
 *
 * @throws ChangetrailError SIGNED_NOTE_MALFORMED, SIGNATURE_INVALID, SIGNED_HEAD_MISMATCH, JOURNAL_*.
 */
export function verifySignedHead(databasePath: string, note: string, key?: VerifierKey): SignedHeadReport {
  const parsed = parseSignedNote(note);
  const signedBy = key === undefined ? null : checkNoteSignature(parsed, key);
  const journal = openAuditJournal(databasePath);
  const { origin, size, rootHash } = parsed.checkpoint;
  const signedHash = toHex(rootHash);
  const mismatch = (reason: 'other-journal' | 'truncated' | 'rewritten', journalHash: string | null, message: string) =>
    new ChangetrailError('SIGNED_HEAD_MISMATCH', `verify signed head: ${message}`, { seq: size, signedHash, journalHash, headSeq: journal.head.seq, reason });
  if (origin !== journal.head.journalId) throw mismatch('other-journal', null, `the note signs journal ${origin}, the database's journal is ${journal.head.journalId}`);
  if (size > journal.head.seq) {
    throw mismatch('truncated', null, `the note signs entry ${size}, the journal ends at entry ${journal.head.seq}: entries were removed (history rolled back)`);
  }
  const position = journal.reader.positionAt(size);
  if (!bytesEqual(fromHex(position.hash), rootHash)) {
    throw mismatch('rewritten', position.hash, `entry ${size} is ${position.hash.slice(0, 16)}, the note signs ${signedHash.slice(0, 16)}: the history was rewritten`);
  }
  return { signed: position, head: journal.head, signedBy };
}
