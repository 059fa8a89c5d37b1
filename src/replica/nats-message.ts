/**
 * How a journal is laid out in JetStream, and the one check of what comes back from it.
 *
 * - Stream `<name>`, subject `changetrail.<name>.entries`: message `n` is entry `n` (the shipper publishes
 *   entry n expecting the stream's last sequence to be n-1, so the numbers cannot drift). The payload is the
 *   entry's frame exactly as in the journal (FORMAT.md: size, seq, CRC-32, body), so a follower verifies the
 *   CRC, the body and the chain with the journal's own decoders. `Nats-Msg-Id` is the entry hash.
 * - Object Store bucket `<name>-files`: `manifest` (the journal's 80-byte manifest: the chain root),
 *   `genesis.db`, `snapshot-<seq>.db` (resync snapshots), and `frame-<seq>` for a frame larger than the
 *   server's max payload (its message then carries no payload and names the object).
 *
 * Stream content is untrusted: {@link decodeEntryMessage} verifies everything before an entry is used.
 */
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { ChangetrailError } from '../errors.js';
import { decodeEntryBody, hashEntryBody, type EntryBody } from '../journal/entry.js';
import { decodeFrame } from '../journal/frame.js';

export const JOURNAL_ID_HEADER = 'Changetrail-Journal-Id';
export const SEQ_HEADER = 'Changetrail-Seq';
/** Set on a message whose frame is in the Object Store (too large for one message). */
export const OBJECT_HEADER = 'Changetrail-Object';
export const MANIFEST_OBJECT = 'manifest';
/** Room left for headers and protocol overhead below the server's max payload. */
export const PAYLOAD_HEADROOM = 4096;

/** An entry as received from the stream, verified. */
export interface ReceivedEntry {
  readonly seq: number;
  readonly hash: string;
  readonly body: EntryBody;
}

export function frameObjectName(seq: number): string {
  return `frame-${seq}`;
}

/** Headers of entry `seq`'s message. */
export function entryHeaders(journalId: string, seq: number, objectName: string | null): MsgHdrs {
  const h = natsHeaders();
  h.set(JOURNAL_ID_HEADER, journalId);
  h.set(SEQ_HEADER, String(seq));
  if (objectName !== null) h.set(OBJECT_HEADER, objectName);
  return h;
}

/** Where a message's frame is: inline, or the name of the object that holds it. */
export function objectNameOf(header: MsgHdrs | undefined): string | null {
  const name = header?.get(OBJECT_HEADER) ?? '';
  return name.length === 0 ? null : name;
}

/**
 * Verifies the frame of stream message `streamSeq` and returns its entry: the CRC, the body (the journal's
 * own validation), that it is entry `streamSeq` of journal `journalId`, and, when `prevHash` is given,
 * that it chains to it.
 *
 * @throws ChangetrailError JOURNAL_CHECKSUM_MISMATCH, JOURNAL_MALFORMED, JOURNAL_MISMATCH (another
 *   journal's message), JOURNAL_GAP (another entry than the message number), JOURNAL_CHAIN_BROKEN.
 */
export function decodeEntryMessage(frameBytes: Uint8Array, header: MsgHdrs | undefined, streamSeq: number, journalId: string, prevHash: string | null, source: string): ReceivedEntry {
  const file = `${source}#${streamSeq}`;
  const named = header?.get(JOURNAL_ID_HEADER) ?? '';
  if (named !== journalId) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `read ${file}: the message belongs to journal ${named || '(none)'}, not ${journalId}`, {
      databaseJournalId: journalId, journalJournalId: named || null, reason: 'journal ids differ',
    });
  }
  const frame = decodeFrame(frameBytes, file, 0);
  if (frame.size !== frameBytes.byteLength) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${file}: ${frameBytes.byteLength - frame.size} bytes after the frame`, { file, offset: frame.size, reason: 'trailing bytes', seq: streamSeq });
  }
  if (frame.seq !== streamSeq) {
    throw new ChangetrailError('JOURNAL_GAP', `read ${file}: message ${streamSeq} holds entry ${frame.seq}`, { file, expectedSeq: streamSeq, foundSeq: frame.seq });
  }
  const body = decodeEntryBody(frame.body, file, 0, frame.seq);
  if (body.seq !== frame.seq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${file}: frame ${frame.seq} holds entry ${body.seq}`, { file, offset: 0, seq: frame.seq, reason: 'frame and body seq differ' });
  }
  if (prevHash !== null && Buffer.from(body.prevHash).toString('hex') !== prevHash) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${file}: entry ${frame.seq} does not chain to entry ${frame.seq - 1}`, { seq: frame.seq, file });
  }
  return { seq: frame.seq, hash: Buffer.from(hashEntryBody(frame.body)).toString('hex'), body };
}

/** The Object Store's digest string of content with this SHA-256 (`SHA-256=` + padded base64url, as nats.js writes it). */
export function objectDigest(sha256: Uint8Array): string {
  return `SHA-256=${Buffer.from(sha256).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
}
