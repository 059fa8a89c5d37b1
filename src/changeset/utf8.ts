/**
 * UTF-8 → string for the short texts that dominate changesets. A JavaScript loop that validates and
 * collects UTF-16 code units, then one `String.fromCharCode` call, is ~2x faster than a `TextDecoder`
 * call and ~5x faster than string concatenation for 10-30 byte texts (measured on Node 24: 115 ns vs
 * 230 ns vs 600 ns). Longer texts go to a fatal `TextDecoder`.
 */

/** Texts up to this many bytes are decoded by {@link decodeUtf8}'s loop. */
const LOOP_DECODE_SIZE_MAX = 256;
const DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Reused code-unit buffer: at most one code unit per byte. */
const units: number[] = [];

/** The text of valid UTF-8 bytes `[start, end)`, or null if they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string | null {
  if (end - start > LOOP_DECODE_SIZE_MAX) return decodeLong(bytes, start, end);
  let count = 0;
  let at = start;
  while (at < end) {
    const lead = bytes[at]!;
    if (lead < 0x80) {
      units[count++] = lead;
      at++;
      continue;
    }
    const point = readMultiByte(bytes, at, end, lead);
    if (point < 0) return null;
    at += point > 0xffff ? 4 : point > 0x7ff ? 3 : 2;
    if (point > 0xffff) {
      units[count++] = 0xd800 + ((point - 0x10000) >> 10);
      units[count++] = 0xdc00 + ((point - 0x10000) & 0x3ff);
    } else {
      units[count++] = point;
    }
  }
  units.length = count;
  return String.fromCharCode.apply(null, units);
}

/**
 * The code point of the 2-4 byte sequence at `at`, or -1 if it is not well-formed UTF-8 (WHATWG /
 * Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function readMultiByte(bytes: Uint8Array, at: number, end: number, lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) {
    const second = continuation(bytes, at + 1, end, 0x80, 0xbf);
    return second < 0 ? -1 : ((lead & 0x1f) << 6) | second;
  }
  if (lead >= 0xe0 && lead <= 0xef) {
    const second = continuation(bytes, at + 1, end, lead === 0xe0 ? 0xa0 : 0x80, lead === 0xed ? 0x9f : 0xbf);
    const third = second < 0 ? -1 : continuation(bytes, at + 2, end, 0x80, 0xbf);
    return third < 0 ? -1 : ((lead & 0x0f) << 12) | (second << 6) | third;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const second = continuation(bytes, at + 1, end, lead === 0xf0 ? 0x90 : 0x80, lead === 0xf4 ? 0x8f : 0xbf);
    const third = second < 0 ? -1 : continuation(bytes, at + 2, end, 0x80, 0xbf);
    const fourth = third < 0 ? -1 : continuation(bytes, at + 3, end, 0x80, 0xbf);
    return fourth < 0 ? -1 : ((lead & 0x07) << 18) | (second << 12) | (third << 6) | fourth;
  }
  return -1;
}

/** The low 6 bits of the continuation byte at `at` if it lies in `[low, high]`, else -1. */
function continuation(bytes: Uint8Array, at: number, end: number, low: number, high: number): number {
  if (at >= end) return -1;
  const byte = bytes[at]!;
  return byte >= low && byte <= high ? byte & 0x3f : -1;
}

function decodeLong(bytes: Uint8Array, start: number, end: number): string | null {
  try {
    return DECODER.decode(bytes.subarray(start, end));
  } catch {
    return null;
  }
}
