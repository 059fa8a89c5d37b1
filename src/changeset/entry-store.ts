/**
 * The changes held by a change group, as parallel typed arrays instead of one object per change:
 * combining 10 MB changesets holds ~10^5 changes, and objects made the garbage collector the largest
 * cost (measured: 40% of the time). An entry is an index; its record is `sources[source][start, end)`.
 */

/** End of a bucket chain. */
export const NO_ENTRY = -1;
const INITIAL_CAPACITY = 64;

export class EntryStore {
  /** Buffers that records point into: the inputs and the arena chunks of merged records. */
  readonly sources: Uint8Array[] = [];
  count = 0;
  op = new Uint8Array(INITIAL_CAPACITY);
  indirect = new Uint8Array(INITIAL_CAPACITY);
  source = new Int32Array(INITIAL_CAPACITY);
  start = new Int32Array(INITIAL_CAPACITY);
  end = new Int32Array(INITIAL_CAPACITY);
  /** `sessionChangeHash` of the record's PK fields, as int32 bits. */
  hash = new Int32Array(INITIAL_CAPACITY);
  /** Next entry of the same hash bucket, or {@link NO_ENTRY}. */
  next = new Int32Array(INITIAL_CAPACITY);

  /** Registers a buffer that records will point into; returns its source id. */
  addSource(bytes: Uint8Array): number {
    this.sources.push(bytes);
    return this.sources.length - 1;
  }

  /** Appends an entry; returns its index. */
  add(op: number, indirect: number, source: number, start: number, end: number, hash: number): number {
    if (this.count === this.op.length) this.#grow();
    const entry = this.count++;
    this.op[entry] = op;
    this.indirect[entry] = indirect;
    this.source[entry] = source;
    this.start[entry] = start;
    this.end[entry] = end;
    this.hash[entry] = hash;
    this.next[entry] = NO_ENTRY;
    return entry;
  }

  bytesOf(entry: number): Uint8Array {
    return this.sources[this.source[entry]!]!;
  }

  #grow(): void {
    const capacity = 2 * this.op.length;
    const grow = <T extends Uint8Array | Int32Array>(array: T, create: (size: number) => T): T => {
      const grown = create(capacity);
      grown.set(array);
      return grown;
    };
    this.op = grow(this.op, (size) => new Uint8Array(size));
    this.indirect = grow(this.indirect, (size) => new Uint8Array(size));
    this.source = grow(this.source, (size) => new Int32Array(size));
    this.start = grow(this.start, (size) => new Int32Array(size));
    this.end = grow(this.end, (size) => new Int32Array(size));
    this.hash = grow(this.hash, (size) => new Int32Array(size));
    this.next = grow(this.next, (size) => new Int32Array(size));
  }
}
