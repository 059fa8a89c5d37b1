/**
 * One open segment file: positional appends (never O_APPEND: on NFS it can corrupt, open(2)), fsync,
 * truncation, and a chunked frame scanner. Callers hold SQLite's RESERVED lock for every mutation.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, fsyncSync, statSync, constants } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { fsyncDirectory, io, journalFileMode, openJournalFile, readAt, writeAllAt } from './files.js';
import { FRAME_HEADER_SIZE, SEGMENT_HEADER_SIZE } from './format.js';
import { checkFrameAt, decodeFrame, frameSizeAt, readFrameSize, type Frame } from './frame.js';
import { readSafeU64, view } from './bytes.js';
import { decodeSegmentHeader, encodeSegmentHeader, formatSegmentName, type SegmentHeader } from './segment.js';

/** Frames are read in chunks of this size; larger frames get a read of their own. */
const READ_CHUNK_SIZE = 1024 * 1024;

export interface FrameAt extends Frame {
  offset: number;
}

export class SegmentFile {
  readonly path: string;
  readonly name: string;
  readonly firstSeq: number;
  #fd: number | null;

  private constructor(dir: string, firstSeq: number, fd: number) {
    this.name = formatSegmentName(firstSeq);
    this.path = join(dir, this.name);
    this.firstSeq = firstSeq;
    this.#fd = fd;
  }

  /** Opens an existing segment for reading (and writing when `writable`). Missing → null. */
  static open(dir: string, firstSeq: number, writable: boolean): SegmentFile | null {
    const path = join(dir, formatSegmentName(firstSeq));
    return io('open segment', path, () => {
      const fd = openJournalFile(path, writable ? constants.O_RDWR : constants.O_RDONLY);
      return fd === null ? null : new SegmentFile(dir, firstSeq, fd);
    });
  }

  /** Creates (or replaces an orphan of) a segment holding only its header, fsynced with its directory. */
  static create(dir: string, header: SegmentHeader): SegmentFile {
    const path = join(dir, formatSegmentName(header.firstSeq));
    const fd = io('create segment', path, () => openJournalFile(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, journalFileMode(dir))!);
    const segment = new SegmentFile(dir, header.firstSeq, fd);
    try {
      io('write segment header', path, () => {
        writeAllAt(fd, encodeSegmentHeader(header), 0);
        fsyncSync(fd);
      });
      fsyncDirectory(dir);
    } catch (cause) {
      segment.close();
      throw cause;
    }
    return segment;
  }

  get fd(): number {
    assert(this.#fd !== null, 'segment is open');
    return this.#fd;
  }

  size(): number {
    return io('stat segment', this.path, () => fstatSync(this.fd).size);
  }

  /** False when the path now names another file than the one this descriptor has open. */
  isStillAtPath(): boolean {
    return io('stat segment', this.path, () => {
      const open = fstatSync(this.fd);
      try {
        const atPath = statSync(this.path);
        return open.ino === atPath.ino && open.dev === atPath.dev;
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw cause;
      }
    });
  }

  readHeader(): SegmentHeader {
    const bytes = io('read segment header', this.path, () => readAt(this.fd, SEGMENT_HEADER_SIZE, 0));
    return decodeSegmentHeader(bytes, this.name);
  }

  /** Writes `bytes` at `offset` (not yet durable: call `sync`). */
  writeAt(bytes: Uint8Array, offset: number): void {
    io('append to segment', this.path, () => writeAllAt(this.fd, bytes, offset));
  }

  /** Makes written bytes durable. A failed fsync is never retried: the caller rolls back and reopens. */
  sync(): void {
    io('fsync segment', this.path, () => fdatasyncSync(this.fd));
  }

  truncateDurably(size: number): void {
    assert(size >= SEGMENT_HEADER_SIZE, 'never truncate into the header');
    io('truncate segment', this.path, () => {
      ftruncateSync(this.fd, size);
      fsyncSync(this.fd);
    });
  }

  readBytes(offset: number, length: number): Uint8Array {
    return io('read segment', this.path, () => readAt(this.fd, length, offset));
  }

  /** Reads and verifies the frame at `offset`. */
  readFrame(offset: number): FrameAt {
    const header = this.readBytes(offset, FRAME_HEADER_SIZE);
    const size = readFrameSize(header, this.name, offset);
    return { ...decodeFrame(this.readBytes(offset, size), this.name, offset), offset };
  }

  /**
   * Yields verified frames from `start` until `end` (exclusive, default: end of file). A torn or corrupt
   * frame throws; the caller decides whether that region was committed. Frames are checked in place in
   * the chunk read (one DataView per chunk, not two views per frame).
   */
  *frames(start: number = SEGMENT_HEADER_SIZE, end: number = this.size()): Generator<FrameAt> {
    let chunk: Uint8Array = new Uint8Array(0);
    let data = view(chunk);
    let chunkStart = start;
    let offset = start;
    while (offset < end) {
      if (offset + FRAME_HEADER_SIZE > chunkStart + chunk.byteLength) {
        chunkStart = offset;
        chunk = this.readBytes(offset, Math.min(READ_CHUNK_SIZE, end - offset));
        data = view(chunk);
      }
      const size = frameSizeAt(chunk, data, offset - chunkStart, this.name, offset);
      if (offset + size > chunkStart + chunk.byteLength) {
        chunkStart = offset;
        chunk = this.readBytes(offset, Math.min(Math.max(READ_CHUNK_SIZE, size), end - offset));
        data = view(chunk);
      }
      const at = offset - chunkStart;
      checkFrameAt(chunk, data, at, this.name, offset);
      const seq = readSafeU64(data, at + 4, this.name, 'seq');
      if (offset + size > end) {
        throw new ChangetrailError('JOURNAL_TORN_TAIL', `read ${this.name}: frame ${seq} at ${offset} runs past ${end}`, { file: this.name, offset, seq });
      }
      yield { seq, body: chunk.subarray(at + FRAME_HEADER_SIZE, at + size), size, offset };
      offset += size;
    }
  }

  close(): void {
    if (this.#fd === null) return;
    const fd = this.#fd;
    this.#fd = null;
    closeSync(fd);
  }
}
