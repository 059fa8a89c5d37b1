/**
 * Where commands write: human lines (control characters already escaped by the formatters), or JSON
 * (one value per line: NDJSON for lists). Colour only on a TTY, never with NO_COLOR. A reader that goes
 * away (`changetrail log app.db | head -3`) ends the command quietly, as git does.
 */
import { toHex } from '../changeset/hex.js';
import { SqlText } from '../changeset/sql-text.js';

/** Thrown by `Output` once stdout is closed (EPIPE); `main` turns it into a quiet exit. */
export class OutputClosed extends Error {
  constructor() {
    super('stdout closed');
    this.name = 'OutputClosed';
  }
}

/** The minimal writable stream a command's output goes to (process.stdout, or a test's sink). */
export interface Sink {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly destroyed?: boolean | undefined;
  on?(event: 'error', listener: (error: NodeJS.ErrnoException) => void): unknown;
}

export type ColorName = 'yellow' | 'green' | 'red' | 'cyan' | 'dim' | 'bold';

const SGR: Record<ColorName, [number, number]> = {
  yellow: [33, 39], green: [32, 39], red: [31, 39], cyan: [36, 39], dim: [2, 22], bold: [1, 22],
};

export interface OutputOptions {
  json: boolean;
  stdout?: Sink;
  stderr?: Sink;
  env?: NodeJS.ProcessEnv;
}

export class Output {
  readonly json: boolean;
  readonly color: boolean;
  readonly #stdout: Sink;
  readonly #stderr: Sink;
  #closed = false;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
    this.color = !this.json && colorEnabled(this.#stdout, options.env ?? process.env);
    this.#stdout.on?.('error', (error) => {
      // EPIPE: the reader went away. Anything else on stdout is equally unrecoverable for a CLI.
      this.#closed = true;
      if (error.code !== 'EPIPE') this.#stderr.write(`changetrail: cannot write output: ${error.message}\n`);
    });
  }

  /** Whether stdout still accepts output. */
  get closed(): boolean {
    return this.#closed || this.#stdout.destroyed === true;
  }

  /** One line of human output. Callers escape untrusted text with `escapeControl` (format.ts). */
  line(text = ''): void {
    this.#write(`${text}\n`);
  }

  /** One JSON value on one line (NDJSON when called per item). */
  record(value: unknown): void {
    this.#write(`${toJson(value)}\n`);
  }

  /** `record(value)` with --json, else `line(human())`. */
  emit(value: unknown, human: () => string): void {
    if (this.json) this.record(value);
    else this.line(human());
  }

  /** A line on stderr (errors, warnings, notices that are not the command's result). */
  notice(text: string): void {
    this.#stderr.write(`${text}\n`);
  }

  /** `text` in colour when colour is on. */
  paint(text: string, color: ColorName): string {
    if (!this.color) return text;
    const [on, off] = SGR[color];
    return `\u001b[${on}m${text}\u001b[${off}m`;
  }

  #write(text: string): void {
    if (this.closed) throw new OutputClosed();
    this.#stdout.write(text);
  }
}

/** NO_COLOR (any non-empty value) wins, then FORCE_COLOR (not "0"), then whether stdout is a TTY. */
export function colorEnabled(stdout: Sink, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0';
  return stdout.isTTY === true && env.TERM !== 'dumb';
}

/**
 * JSON text of any value changetrail returns: bigints as numbers when safe (else strings), BLOBs as
 * `{"$blob": "<hex>"}`, invalid-UTF-8 text as `{"$textHex": "<hex>"}`, Dates as ISO strings.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key];
    if (typeof raw === 'bigint') return Number.isSafeInteger(Number(raw)) ? Number(raw) : String(raw);
    if (raw instanceof Uint8Array) return { $blob: toHex(raw) };
    if (raw instanceof SqlText) return { $textHex: toHex(raw.bytes) };
    return v;
  });
}
