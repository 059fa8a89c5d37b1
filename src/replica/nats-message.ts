/**
 * How a journal is laid out in JetStream, and the one check of what comes back from it.
 *
 * - Stream `<name>`, subject `changetrail.<name>.entries`: message `n` is entry `n` (the shipper publishes
 *   entry n expecting the stream's last sequence to be n-1, so the numbers cannot drift). The payload is the
 *   entry's frame exactly as in the journal (FORMAT.md: size, seq, CRC-32, body), so a follower verifies the
 *   CRC, the body and the chain with the journal's own decoders. `Nats-Msg-Id` is the entry hash.
 * - Object Store bucket `<name>-files`: `manifest` (the journal's 80-byte manifest: the chain root),
 *   `genesis.db`, `snapshot-<seq>.db` (resync snapshots), `checkpoint-<seq>.db` (checkpoint snapshots),
 *   and `frame-<seq>` for a frame larger than the server's max payload (its message then carries no
 *   payload and names the object). A snapshot object is used only as its entry in the stream describes
 *   it (position, SHA-256, size): object metadata is never trusted.
 * - A primary that pruned entries a shipper had not shipped yet gets *pruned markers* in their place
 *   ({@link PRUNED_HEADER}), so that message n stays entry n.
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
/**
 * Set on a *pruned marker*: message `n` stands for entry `n`, which the primary pruned before it was
 * shipped (a shipper behind the hold limits). The value is the base seq `N` the markers lead to and
 * `Changetrail-Checkpoint` the checkpoint entry `K` whose snapshot holds the state as of `N`; entries
 * `N + 1 ..` follow as usual. A follower reading a marker rebases on that checkpoint.
 */
export const PRUNED_HEADER = 'Changetrail-Pruned-Through';
export const CHECKPOINT_HEADER = 'Changetrail-Checkpoint';
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

/** Headers of the pruned marker for entry `seq` (see {@link PRUNED_HEADER}). */
export function prunedMarkerHeaders(journalId: string, seq: number, baseSeq: number, checkpointSeq: number): MsgHdrs {
  const h = entryHeaders(journalId, seq, null);
  h.set(PRUNED_HEADER, String(baseSeq));
  h.set(CHECKPOINT_HEADER, String(checkpointSeq));
  return h;
}

/** The base seq and checkpoint a pruned marker names, or null for an entry's message. */
export function prunedMarkerOf(header: MsgHdrs | undefined, streamSeq: number): { baseSeq: number; checkpointSeq: number } | null {
  const through = header?.get(PRUNED_HEADER) ?? '';
  if (through.length === 0) return null;
  const baseSeq = Number(through);
  const checkpointSeq = Number(header?.get(CHECKPOINT_HEADER) ?? '');
  if (!Number.isSafeInteger(baseSeq) || !Number.isSafeInteger(checkpointSeq) || streamSeq > baseSeq || checkpointSeq <= baseSeq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read message ${streamSeq}: a pruned marker naming base ${through} and checkpoint ${header?.get(CHECKPOINT_HEADER) ?? ''}`, {
      file: `message ${streamSeq}`, offset: 0, seq: streamSeq, reason: 'bad pruned marker',
    });
  }
  return { baseSeq, checkpointSeq };
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
