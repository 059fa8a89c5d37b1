/**
 * SQLite's own C implementation of invert and changegroup, from `@sqlite.org/sqlite-wasm` (SQLite 3.54.1),
 * as the differential oracle for the TypeScript codec. Buffers cross into wasm memory with `wasm.alloc`
 * and come back through pointer out-parameters; outputs are freed with `sqlite3_free`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';

/** SQLite result codes the tests look at. */
export const SQLITE_OK = 0;
export const SQLITE_ERROR = 1;
export const SQLITE_CORRUPT = 11;
export const SQLITE_SCHEMA = 17;

/** A C call's result code and, when it is SQLITE_OK, its output bytes. */
export interface OracleResult {
  rc: number;
  bytes: Uint8Array;
}

export interface Oracle {
  version: string;
  /** `sqlite3changeset_invert`. */
  invert(bytes: Uint8Array): OracleResult;
  /** `sqlite3changegroup_new`, `_add` for each input in order, `_output`, `_delete`. */
  group(list: Uint8Array[]): OracleResult;
  /** Iterates with `sqlite3changeset_start`/`_next` to the end: the C decoder (benchmarks). Returns the change count. */
  iterate(bytes: Uint8Array): number;
}

/** wasm32 pointers are 4 bytes; out-parameters get 8 to be safe. */
const OUT_PARAM_SIZE = 8;
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;

let loading: Promise<Oracle> | undefined;

/** Loads the wasm module once per process. */
export function loadOracle(): Promise<Oracle> {
  loading ??= instantiate();
  return loading;
}

async function instantiate(): Promise<Oracle> {
  const require = createRequire(import.meta.url);
  const wasmBinary = readFileSync(require.resolve('@sqlite.org/sqlite-wasm/sqlite3.wasm'));
  // Reference §0: the browser-oriented glue may look for `self` and `location`; define them when absent.
  const globals = globalThis as Record<string, unknown>;
  globals.self ??= globalThis;
  globals.location ??= new URL('file:///');
  const init = sqlite3InitModule as unknown as (options: object) => Promise<Sqlite3>;
  const sqlite3 = await init({ wasmBinary, print: () => {}, printErr: () => {} });
  return new WasmOracle(sqlite3);
}

/** The slice of the sqlite-wasm API used here (its own types describe far more). */
interface Sqlite3 {
  version: { libVersion: string };
  capi: Record<string, (...args: number[]) => number>;
  wasm: {
    alloc(size: number): number;
    dealloc(pointer: number): void;
    heap8u(): Uint8Array;
    peekPtr(pointer: number): number;
    peek(pointer: number, type: 'i32'): number;
  };
}

class WasmOracle implements Oracle {
  readonly version: string;
  readonly #capi: Sqlite3['capi'];
  readonly #wasm: Sqlite3['wasm'];

  constructor(sqlite3: Sqlite3) {
    this.version = sqlite3.version.libVersion;
    this.#capi = sqlite3.capi;
    this.#wasm = sqlite3.wasm;
  }

  invert(bytes: Uint8Array): OracleResult {
    return this.#withInput(bytes, (input) => this.#withOutput((size, data) => this.#capi.sqlite3changeset_invert!(bytes.length, input, size, data)));
  }

  group(list: Uint8Array[]): OracleResult {
    const groupOut = this.#wasm.alloc(OUT_PARAM_SIZE);
    try {
      const rc = this.#capi.sqlite3changegroup_new!(groupOut);
      if (rc !== SQLITE_OK) return { rc, bytes: new Uint8Array(0) };
      const group = this.#wasm.peekPtr(groupOut);
      try {
        for (const bytes of list) {
          const added = this.#withInput(bytes, (input) => ({ rc: this.#capi.sqlite3changegroup_add!(group, bytes.length, input), bytes: new Uint8Array(0) }));
          if (added.rc !== SQLITE_OK) return added;
        }
        return this.#withOutput((size, data) => this.#capi.sqlite3changegroup_output!(group, size, data));
      } finally {
        this.#capi.sqlite3changegroup_delete!(group);
      }
    } finally {
      this.#wasm.dealloc(groupOut);
    }
  }

  iterate(bytes: Uint8Array): number {
    const iteratorOut = this.#wasm.alloc(OUT_PARAM_SIZE);
    try {
      return this.#withInput(bytes, (input) => {
        if (this.#capi.sqlite3changeset_start!(iteratorOut, bytes.length, input) !== SQLITE_OK) throw new Error('sqlite3changeset_start failed');
        const iterator = this.#wasm.peekPtr(iteratorOut);
        let count = 0;
        let rc: number;
        while ((rc = this.#capi.sqlite3changeset_next!(iterator)) === SQLITE_ROW) count++;
        const finalized = this.#capi.sqlite3changeset_finalize!(iterator);
        if (rc !== SQLITE_DONE || finalized !== SQLITE_OK) throw new Error(`sqlite3changeset_next failed: ${rc}`);
        return count;
      });
    } finally {
      this.#wasm.dealloc(iteratorOut);
    }
  }

  #withInput<T>(bytes: Uint8Array, use: (pointer: number) => T): T {
    const pointer = this.#wasm.alloc(Math.max(1, bytes.length));
    try {
      this.#wasm.heap8u().set(bytes, pointer);
      return use(pointer);
    } finally {
      this.#wasm.dealloc(pointer);
    }
  }

  #withOutput(call: (sizeOut: number, dataOut: number) => number): OracleResult {
    const sizeOut = this.#wasm.alloc(OUT_PARAM_SIZE);
    const dataOut = this.#wasm.alloc(OUT_PARAM_SIZE);
    try {
      this.#wasm.heap8u().fill(0, sizeOut, sizeOut + OUT_PARAM_SIZE);
      this.#wasm.heap8u().fill(0, dataOut, dataOut + OUT_PARAM_SIZE);
      const rc = call(sizeOut, dataOut);
      const size = this.#wasm.peek(sizeOut, 'i32');
      const data = this.#wasm.peekPtr(dataOut);
      const bytes = rc === SQLITE_OK && data !== 0 ? this.#wasm.heap8u().slice(data, data + size) : new Uint8Array(0);
      if (data !== 0) this.#capi.sqlite3_free!(data);
      return { rc, bytes };
    } finally {
      this.#wasm.dealloc(sizeOut);
      this.#wasm.dealloc(dataOut);
    }
  }
}
