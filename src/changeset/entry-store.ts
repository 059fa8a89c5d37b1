/**
 * The changes held by a change group, as parallel typed arrays instead of one object per change:
 * combining 10 MB changesets holds ~10^5 changes, and objects made the garbage collector the largest
 * cost (measured: 40% of the time). Hot loops destructure the arrays into locals: accessor methods, or
 * one Int32Array with six fields per entry, were both measured ~8% slower. An entry is an index; its
 * record is `sources[source][start, end)`.
 */

/** End of a bucket chain. */
export const NO_ENTRY = -1;
const INITIAL_CAPACITY = 64;

/** Entries of a change group plus the buffers their records live in. */
export class EntryStore {
  /** Buffers that records point into: the inputs and the arena chunks of merged records. */
  readonly sources: Uint8Array[] = [];
  /** A DataView of each source, for word-wise copies. */
  readonly views: DataView[] = [];
  count = 0;
  op: Uint8Array;
  /** 0 or 1. */
  indirect: Uint8Array;
  /** Index into {@link sources}. */
  source: Int32Array;
  start: Int32Array;
  end: Int32Array;
  /** `sessionChangeHash` of the record's PK fields, as int32 bits. */
  hash: Int32Array;
  /** Next entry of the same hash bucket, or {@link NO_ENTRY}. */
  next: Int32Array;

  constructor(capacity: number) {
    const size = Math.max(INITIAL_CAPACITY, capacity);
    this.op = new Uint8Array(size);
    this.indirect = new Uint8Array(size);
    this.source = new Int32Array(size);
    this.start = new Int32Array(size);
    this.end = new Int32Array(size);
    this.hash = new Int32Array(size);
    this.next = new Int32Array(size);
  }

  /** Registers a buffer that records will point into; returns its source id. */
  addSource(bytes: Uint8Array): number {
    this.sources.push(bytes);
    this.views.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return this.sources.length - 1;
  }

  /** Appends an unlinked entry; `hash` is the PK hash. Returns the entry's index. */
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
    this.op = grownCopy(this.op, new Uint8Array(capacity));
    this.indirect = grownCopy(this.indirect, new Uint8Array(capacity));
    this.source = grownCopy(this.source, new Int32Array(capacity));
    this.start = grownCopy(this.start, new Int32Array(capacity));
    this.end = grownCopy(this.end, new Int32Array(capacity));
    this.hash = grownCopy(this.hash, new Int32Array(capacity));
    this.next = grownCopy(this.next, new Int32Array(capacity));
  }
}

function grownCopy<T extends Uint8Array | Int32Array>(array: T, grown: T): T {
  grown.set(array);
  return grown;
}
