/** TEXT values whose bytes are not valid UTF-8. */

/**
 * A TEXT value whose bytes are not valid UTF-8, kept as bytes so that encoding it again reproduces the
 * input exactly. SQLite does not validate text encoding, so such values exist (for example text written
 * with `CAST(x'ff' AS TEXT)`). Valid UTF-8 text always decodes to a plain `string`.
 */
export class SqlText {
  /** The raw TEXT bytes as stored by SQLite. */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('SqlText: bytes must be a Uint8Array');
    this.bytes = bytes;
  }
}
