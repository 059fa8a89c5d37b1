/** A growable byte buffer for encoders whose output size is not known in advance. */
import { writeVarint, varintSize } from './varint.js';

const INITIAL_CAPACITY = 256;

/** Appends bytes, doubling its buffer as needed; {@link ByteWriter.finish} returns an exact-size copy. */
export class ByteWriter {
  #bytes: Uint8Array;
  #length = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.#bytes = new Uint8Array(Math.max(capacity, INITIAL_CAPACITY));
  }

  get length(): number {
    return this.#length;
  }

  /** Makes room for `size` more bytes and returns the buffer and offset to write them at. */
  reserve(size: number): { bytes: Uint8Array; offset: number } {
    const needed = this.#length + size;
    if (needed > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(needed, 2 * this.#bytes.length));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    const offset = this.#length;
    this.#length = needed;
    return { bytes: this.#bytes, offset };
  }

  byte(value: number): void {
    const { bytes, offset } = this.reserve(1);
    bytes[offset] = value;
  }

  varint(value: number): void {
    const { bytes, offset } = this.reserve(varintSize(value));
    writeVarint(bytes, offset, value);
  }

  copy(source: Uint8Array): void {
    const { bytes, offset } = this.reserve(source.length);
    bytes.set(source, offset);
  }

  /** The bytes written so far, as a new exactly-sized array. */
  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}
