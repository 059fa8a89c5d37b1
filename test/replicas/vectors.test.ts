/**
 * The conformance vectors of journal/vectors/: scripts/gen-vectors.mjs reproduces them byte for byte, and
 * the Node reader and the Python reader (replicas/python) both output exactly what each expected.json
 * says — entries, log lines, the error code after them, the verification report — and a follower of each
 * vector that has a `state` (Python `replicate`, Node `replayJournal`) reproduces it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { replayJournal } from '../../src/apply/replay.js';
import { readHeadMarker, readManifest } from '../../src/journal/journal-reader.js';
import { readCommittedHead } from '../../src/journal/journal.js';
import { tempDir } from '../helpers/db.js';
import { openVectorJournal, projectError, readError, readVectorWithNode, vectorDatabase, type ReadError } from './node-reader.js';
import { runPython, type PythonResult } from './python.js';
import { dumpState } from './state.js';

const VECTORS = fileURLToPath(new URL('../../journal/vectors/', import.meta.url));
const GENERATOR = fileURLToPath(new URL('../../scripts/gen-vectors.mjs', import.meta.url));
const names = readdirSync(VECTORS, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

interface Expected {
  entries: unknown[];
  log?: unknown[];
  error?: ReadError | null;
  verify?: unknown;
  verifyError?: ReadError | null;
  state?: Record<string, unknown>;
  replayError?: ReadError;
}

function expectedOf(name: string): Expected {
  return JSON.parse(readFileSync(join(VECTORS, name, 'expected.json'), 'utf8')) as Expected;
}

function pythonError(result: PythonResult): ReadError | null {
  if (result.error === null) return null;
  const seq = result.error.details.seq;
  return { code: result.error.code, ...(typeof seq === 'number' ? { seq } : {}) };
}

/** `basic` (test/journal/golden.ts) predates log/error/verify: it states entries only, read without error. */
function isFull(expected: Expected): expected is Required<Omit<Expected, 'state'>> & Expected {
  return expected.log !== undefined;
}

describe('journal/vectors', () => {
  it('ok: the set covers every entry kind and every reader rule', () => {
    for (const name of ['basic', 'kinds', 'segment-rotation', 'torn-tail', 'uncommitted-frame', 'torn-committed', 'corrupt-frame', 'broken-chain',
      'head-mismatch', 'sequence-gap', 'unknown-segment-version', 'unknown-manifest-version', 'unknown-body-version', 'unknown-body-key',
      'missing-segment', 'bad-snapshot', 'rowids-malformed', 'rowids-in-v1', 'schema-without-sql', 'resync-wrong-snapshot',
      'undoes-later-entry', 'time-out-of-range', 'meta-too-deep', 'message-too-long', 'replay-refused', 'migration-rowids',
      'outbox-tail', 'outbox-damaged-segment', 'outbox-corrupt-row']) expect(names).toContain(name);
    const kinds = expectedOf('kinds').entries as { kind: string; undoes?: number }[];
    expect(new Set(kinds.map((e) => e.kind))).toEqual(new Set(['write', 'schema', 'resync']));
    expect(kinds.some((e) => e.undoes !== undefined)).toBe(true);
    expect(kinds.some((e) => (e as { rowids?: string }).rowids !== undefined)).toBe(true);
  });

  it('ok: scripts/gen-vectors.mjs reproduces every committed vector byte for byte', () => {
    const out = tempDir('ct-vectors-');
    const run = spawnSync(process.execPath, [GENERATOR, out], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const generated = readdirSync(out).sort();
    expect(generated).toEqual(names.filter((name) => name !== 'basic'));
    for (const name of generated) {
      const files = readdirSync(join(out, name)).sort();
      expect(files, name).toEqual(readdirSync(join(VECTORS, name)).sort());
      for (const file of files) {
        expect(readFileSync(join(out, name, file)).equals(readFileSync(join(VECTORS, name, file))), `${name}/${file} differs: the format changed?`).toBe(true);
      }
    }
  });

  for (const name of names) {
    const dir = join(VECTORS, name);
    const expected = expectedOf(name);

    it(`ok: the Node reader agrees with ${name}/expected.json`, () => {
      const reading = readVectorWithNode(dir);
      expect(reading.entries).toEqual(expected.entries);
      if (!isFull(expected)) return expect(reading.error).toBeNull();
      expect(reading.log).toEqual(expected.log);
      expect(projectError(reading.error, expected.error)).toEqual(expected.error);
      expect(reading.verify).toEqual(expected.verify);
      expect(projectError(reading.verifyError, expected.verifyError)).toEqual(expected.verifyError);
    });

    it(`ok: the Python reader agrees with ${name}/expected.json`, () => {
      const database = vectorDatabase(dir);
      const source = database === null ? [dir] : [dir, '--database', database];
      const bodies = runPython(['log', '--bodies', ...source]);
      expect(bodies.lines).toEqual(expected.entries);
      if (!isFull(expected)) return expect(bodies.error).toBeNull();
      const log = runPython(['log', ...source]);
      expect(log.lines).toEqual(expected.log);
      expect(projectError(pythonError(log), expected.error)).toEqual(expected.error);
      expect(log.status).toBe(expected.error === null ? 0 : 1);
      const verify = runPython(['verify', ...source]);
      expect(verify.lines).toEqual(expected.verify === null ? [] : [expected.verify]);
      expect(projectError(pythonError(verify), expected.verifyError)).toEqual(expected.verifyError);
    });

    if (expected.replayError !== undefined) {
      it(`err: followers refuse to replay ${name} (${expected.replayError.code})`, () => {
        const work = tempDir('ct-vector-replica-');
        const run = runPython(['replicate', dir, join(work, 'python.db')]);
        expect(projectError(pythonError(run), expected.replayError!)).toEqual(expected.replayError);
        let nodeError: ReadError | null = null;
        try {
          replayJournal(openVectorJournal(dir), join(work, 'node.db'));
        } catch (error) {
          nodeError = readError(error);
        }
        expect(projectError(nodeError, expected.replayError!)).toEqual(expected.replayError);
        expect(readdirSync(work).filter((file) => file.startsWith('victim'))).toEqual([]);
        expect(readdirSync(dir).filter((file) => file.startsWith('victim'))).toEqual([]);
      });
    }

    if (expected.state !== undefined) {
      it(`ok: followers reproduce ${name}'s state (Python replicate, Node replayJournal)`, () => {
        const work = tempDir('ct-vector-replica-');
        const replica = join(work, 'python.db');
        const database = vectorDatabase(dir);
        const source = database === null ? [dir] : [dir, '--database', database];
        const run = runPython(['replicate', ...source, replica]);
        expect(run.error).toBeNull();
        const head = database === null ? readHeadMarker(dir)! : { seq: readCommittedHead(database).seq, hash: Buffer.from(readCommittedHead(database).hash, 'hex') };
        expect(run.lines).toEqual([{ journalId: readManifest(dir)!.manifest.journalId.reduce((s, b) => s + b.toString(16).padStart(2, '0'), ''), seq: head.seq, hash: Buffer.from(head.hash).toString('hex'), applied: head.seq - ((expected.verify as { retainedAfter?: number } | null)?.retainedAfter ?? 0) }]);
        expect(dumpState(replica)).toEqual(expected.state);
        const again = runPython(['replicate', ...source, replica]);
        expect((again.lines[0] as { applied: number }).applied).toBe(0);
        const nodeReplay = join(work, 'node.db');
        replayJournal(openVectorJournal(dir), nodeReplay);
        expect(dumpState(nodeReplay)).toEqual(expected.state);
      });
    }
  }
});
