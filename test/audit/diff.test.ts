import { describe, expect, it } from 'vitest';
import { diffPoints } from '../../src/audit/diff.js';
import { cli, ndjson } from './cli-helpers.js';
import { expectedDiff, got, renamesBetween } from './expected.js';
import { random, runWorkload, sameValue, type Workload } from './workload.js';

let cached: Promise<Workload> | null = null;
const workload = () => (cached ??= runWorkload(5, 45));

describe('diffPoints', () => {
  it('ok: random pairs of points equal the difference of the states the test kept (combined and replayed)', async () => {
    const w = await workload();
    const rand = random(99);
    const methods = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const a = w.recorded[Math.floor(rand() * w.recorded.length)]!;
      const b = w.recorded[Math.floor(rand() * w.recorded.length)]!;
      const result = diffPoints(w.path, a.seq, b.seq);
      methods.add(result.method);
      expect(got(result), `${a.seq}..${b.seq} (${result.method})`).toEqual(expectedDiff(a.state, b.state, renamesBetween(w, a.seq, b.seq)));
      if (result.method === 'combined') expect(got(diffPoints(w.path, a.seq, b.seq, { method: 'replay' }))).toEqual(got(result));
      for (const row of result.rows.filter((r) => r.op === 'update')) {
        for (const [column, value] of Object.entries(row.after!)) expect(sameValue(value, b.state.get([...b.state.keys()].find((t) => t.toLowerCase() === row.table.toLowerCase())!)!.get(row.key)![column])).toBe(true);
      }
    }
    // Short ranges of data writes combine; ranges over migrations and resyncs replay.
    for (let i = 1; i < w.recorded.length; i += 2) {
      const [a, b] = [w.recorded[i - 1]!, w.recorded[i]!];
      const result = diffPoints(w.path, a.seq, b.seq);
      methods.add(result.method);
      expect(got(result), `${a.seq}..${b.seq}`).toEqual(expectedDiff(a.state, b.state, renamesBetween(w, a.seq, b.seq)));
    }
    expect(methods).toEqual(new Set(['combined', 'replayed']));
  });

  it('ok: the CLI: --stat, --json, the head by default, a time point', async () => {
    const w = await workload();
    const head = w.recorded.at(-1)!;
    const json = cli('diff', w.path, '0', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(ndjson(json.stdout)).toHaveLength(expectedDiff(w.recorded[0]!.state, head.state).length);
    const human = cli('diff', w.path, '0', '--stat');
    expect(human.stdout).toMatch(/tables? changed/);
    const word = cli('diff', w.path, String(head.seq - 1));
    expect(word.code).toBe(0);
    const timeOfFirst = ndjson(cli('log', w.path, '--json', '--limit', '1').stdout)[0]!.time as string;
    expect(cli('diff', w.path, `@${timeOfFirst}`, '--json').code).toBe(0);
  });
});
