/** Copying byte ranges between buffers, tuned for the short fields and records that fill changesets. */

/**
 * Below this size a plain loop beats `set(subarray())`, which allocates a view (measured on Node 24:
 * 23 ns vs 50 ns at 16 bytes, even at ~40 bytes).
 */
const LOOP_COPY_SIZE_MAX = 32;
/** Above this size `set(subarray())` (a memcpy) beats 4-byte DataView moves (measured: even at ~256 bytes). */
const WORD_COPY_SIZE_MAX = 256;
const WORD_SIZE = 4;

/** Copies `source[start, end)` to `target` at `offset`; returns the offset after the copy. */
export function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, offset: number): number {
  const size = end - start;
  if (size <= LOOP_COPY_SIZE_MAX) {
    for (let index = 0; index < size; index++) target[offset + index] = source[start + index]!;
  } else {
    target.set(source.subarray(start, end), offset);
  }
  return offset + size;
}

/**
 * {@link copyBytes} for callers that hold DataViews of both buffers: mid-sized ranges move in 4-byte
 * words, which allocates nothing (combining 20 MB: ~10% less CPU time than a `subarray` per record).
 */
export function copyBytesWithViews(
  source: Uint8Array, sourceView: DataView, start: number, end: number, target: Uint8Array, targetView: DataView, offset: number,
): number {
  const size = end - start;
  if (size <= LOOP_COPY_SIZE_MAX || size > WORD_COPY_SIZE_MAX) return copyBytes(source, start, end, target, offset);
  let from = start;
  let to = offset;
  for (const wordsEnd = end - WORD_SIZE; from <= wordsEnd; from += WORD_SIZE, to += WORD_SIZE) {
    targetView.setUint32(to, sourceView.getUint32(from));
  }
  for (; from < end; from++, to++) target[to] = source[from]!;
  return offset + size;
}
