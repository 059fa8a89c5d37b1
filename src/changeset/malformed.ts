/** The one way bytes are reported as not following SQLite's changeset format. */
import { ChangetrailError } from '../errors.js';

/**
 * Builds the `CHANGESET_MALFORMED` error for input bytes. `offset` is the offset of the first byte of
 * the item that could not be read (a header, a change, a value, a length), relative to the input.
 */
export function malformed(offset: number, reason: string): ChangetrailError<'CHANGESET_MALFORMED'> {
  return new ChangetrailError('CHANGESET_MALFORMED', `decode changeset: ${reason} at offset ${offset}`, {
    offset,
    reason,
  });
}
