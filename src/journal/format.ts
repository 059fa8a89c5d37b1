/**
 * Sizes, magics and versions of the on-disk journal. The normative description is journal/FORMAT.md;
 * every constant here appears there with the same name. Changing any of them is a format change.
 *
 * All fixed-width integers are big-endian. Every file starts with a 4-byte magic and a 2-byte version,
 * and every fixed header ends with a CRC-32 (ISO-HDLC, as zlib's crc32) of the bytes before it.
 */
import { assert } from '../assert.js';

export const FORMAT_VERSION = 1;

export const MANIFEST_FILE = 'manifest';
export const MANIFEST_MAGIC = 0x43544a4d; // "CTJM"
export const MANIFEST_SIZE = 80;

export const SEGMENT_MAGIC = 0x43544a53; // "CTJS"
export const SEGMENT_HEADER_SIZE = 40;
export const SEGMENT_SUFFIX = '.seg';
/** Segment file names are the first sequence number, zero-padded to this width, then SEGMENT_SUFFIX. */
export const SEGMENT_NAME_DIGITS = 20;

export const HEAD_FILE = 'head';
export const HEAD_MAGIC = 0x43544a48; // "CTJH"
export const HEAD_SIZE = 72;

export const GENESIS_FILE = 'genesis.db';

export const FRAME_HEADER_SIZE = 16;
/** A body larger than this is refused when written and treated as malformed when read (1 GiB). */
export const BODY_SIZE_MAX = 1024 * 1024 * 1024;

export const JOURNAL_ID_SIZE = 16;
export const HASH_SIZE = 32;
/** Sequence numbers stay exactly representable as JavaScript numbers. */
export const SEQ_MAX = Number.MAX_SAFE_INTEGER;

/** A writer starts a new segment before the current one would grow past this size (64 MiB). */
export const SEGMENT_BYTES_TARGET = 64 * 1024 * 1024;

assert(MANIFEST_SIZE % 8 === 0, 'manifest size is a multiple of 8');
assert(SEGMENT_HEADER_SIZE % 8 === 0, 'segment header size is a multiple of 8');
assert(HEAD_SIZE % 8 === 0, 'head size is a multiple of 8');
assert(BODY_SIZE_MAX < 2 ** 32, 'body sizes fit the u32 size field');
