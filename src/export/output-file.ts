/**
 * Output files of restore and backup: built under a temporary name beside the target, fsynced, then
 * renamed over it, so a failed or interrupted run never leaves a partial database under the name asked
 * for. An existing target is refused unless `force`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { fsyncDirectory, fsyncFile, io } from '../journal/files.js';

/** SQLite's side files of a database; a leftover one beside the temporary file would be applied to it. */
const SIDE_SUFFIXES = ['-journal', '-wal', '-shm'];

export class OutputFile {
  readonly path: string;
  readonly temp: string;

  private constructor(path: string, temp: string) {
    this.path = path;
    this.temp = temp;
  }

  /** @throws ChangetrailError OUTPUT_EXISTS unless `force`. */
  static prepare(path: string, force: boolean): OutputFile {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('output path must be a non-empty string');
    const target = resolve(path);
    if (!force && existsSync(target)) {
      throw new ChangetrailError('OUTPUT_EXISTS', `write ${target}: the file exists (pass force to replace it)`, { path: target });
    }
    return new OutputFile(target, join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`));
  }

  /** fsyncs the finished temporary file (its connection closed) and renames it over the target. */
  commit(): void {
    io('finish', this.path, () => {
      for (const suffix of SIDE_SUFFIXES) rmSync(`${this.temp}${suffix}`, { force: true });
      fsyncFile(this.temp);
      for (const suffix of SIDE_SUFFIXES) rmSync(`${this.path}${suffix}`, { force: true });
      renameSync(this.temp, this.path);
    });
    fsyncDirectory(dirname(this.path));
  }

  discard(): void {
    for (const suffix of ['', ...SIDE_SUFFIXES]) rmSync(`${this.temp}${suffix}`, { force: true });
  }
}
