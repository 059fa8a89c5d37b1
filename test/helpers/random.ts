/** mulberry32: a small seeded PRNG for workloads, so a failing seed replays exactly. Values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A hash prefix as a position spec: a prefix of decimal digits only would be read as a seq (by design;
 * `hash:` makes it a prefix), which a random hash gives with chance (10/16)^digits — 2.3% for 8 digits.
 */
export function hashPrefixSpec(hash: string, digits: number): string {
  const prefix = hash.slice(0, digits);
  return /^\d+$/.test(prefix) ? `hash:${prefix}` : prefix;
}
