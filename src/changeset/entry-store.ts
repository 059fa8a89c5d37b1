/**
 * The changes held by a change group, packed in one Int32Array (six int32 per entry) instead of one
 * object per change. Combining 10 MB changesets holds ~10^5 changes: as objects they made the garbage
 * collector the largest cost (40% of the time), and as parallel arrays the hash-order walks of output and
 * rehash touched six cache lines per entry instead of one or two. An entry is an index; its record is
 * `sources[source][start, end)`.
 */

/** End of a bucket chain. */
export const NO_ENTRY = -1;
const INITIAL_CAPACITY = 64;

/** Field offsets within an entry. */
const OP_AND_INDIRECT = 0;
const SOURCE = 1;
const START = 2;
const END = 3;
const HASH = 4;
const NEXT = 5;
const STRIDE = 6;
const INDIRECT_SHIFT = 8;
const OP_MASK = 0xff;

export class EntryStore {
  /** Buffers that records point into: the inputs and the arena chunks of merged records. */
  readonly sources: Uint8Array[] = [];
  /** A DataView of each source, for word-wise copies. */
  readonly views: DataView[] = [];
  count = 0;
  #data: Int32Array;

  constructor(capacity: number) {
    this.#data = new Int32Array(STRIDE * Math.max(INITIAL_CAPACITY, capacity));
  }

  /** Registers a buffer that records will point into; returns its source id. */
  addSource(bytes: Uint8Array): number {
    this.sources.push(bytes);
    this.views.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return this.sources.length - 1;
  }

  /** Appends an unlinked entry; `hash` is the unsigned 32-bit PK hash. Returns the entry's index. */
  add(op: number, indirect: number, source: number, start: number, end: number, hash: number): number {
    if ((this.count + 1) * STRIDE > this.#data.length) this.#grow();
    const entry = this.count++;
    const base = entry * STRIDE;
    const data = this.#data;
    data[base + OP_AND_INDIRECT] = op | (indirect << INDIRECT_SHIFT);
    data[base + SOURCE] = source;
    data[base + START] = start;
    data[base + END] = end;
    data[base + HASH] = hash;
    data[base + NEXT] = NO_ENTRY;
    return entry;
  }

  op(entry: number): number {
    return this.#data[entry * STRIDE + OP_AND_INDIRECT]! & OP_MASK;
  }

  indirect(entry: number): number {
    return this.#data[entry * STRIDE + OP_AND_INDIRECT]! >>> INDIRECT_SHIFT;
  }

  /** Gives an entry another op and indirect flag (an incoming change reused as the merge result). */
  retag(entry: number, op: number, indirect: number): void {
    this.#data[entry * STRIDE + OP_AND_INDIRECT] = op | (indirect << INDIRECT_SHIFT);
  }

  source(entry: number): number {
    return this.#data[entry * STRIDE + SOURCE]!;
  }

  bytesOf(entry: number): Uint8Array {
    return this.sources[this.#data[entry * STRIDE + SOURCE]!]!;
  }

  start(entry: number): number {
    return this.#data[entry * STRIDE + START]!;
  }

  end(entry: number): number {
    return this.#data[entry * STRIDE + END]!;
  }

  /** The PK hash as int32 bits: compare with `|0` values, mask for buckets. */
  hash(entry: number): number {
    return this.#data[entry * STRIDE + HASH]!;
  }

  setHash(entry: number, hash: number): void {
    this.#data[entry * STRIDE + HASH] = hash;
  }

  next(entry: number): number {
    return this.#data[entry * STRIDE + NEXT]!;
  }

  setNext(entry: number, next: number): void {
    this.#data[entry * STRIDE + NEXT] = next;
  }

  #grow(): void {
    const grown = new Int32Array(2 * this.#data.length);
    grown.set(this.#data);
    this.#data = grown;
  }
}
