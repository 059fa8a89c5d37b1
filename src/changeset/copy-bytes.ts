/** Copying byte ranges between buffers, tuned for the short fields that dominate changesets. */

/** Below this size a plain loop beats `set(subarray())`, which allocates a view (measured on Node 24: 23 ns vs 50 ns at 16 bytes, even at ~40). */
const LOOP_COPY_SIZE_MAX = 32;

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
