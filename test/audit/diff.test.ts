import { describe, expect, it } from 'vitest';
import { diffPoints } from '../../src/audit/diff.js';
import { cli, ndjson } from './cli-helpers.js';
import { random, runWorkload, sameValue, type State, type Workload } from './workload.js';

let cached: Promise<Workload> | null = null;
const workload = () => (cached ??= runWorkload(5, 45));

/** The difference of two recorded states, by name: what diff must report. */
function expectedDiff(a: State, b: State, renames: Record<string, Record<string, string>> = {}): string[] {
  const rows: string[] = [];
  for (const table of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const ra = a.get(table) ?? new Map();
    const rb = b.get(table) ?? new Map();
    for (const key of new Set([...ra.keys(), ...rb.keys()])) {
      const original = ra.get(key);
      // The state at A with renamed columns under their names at B.
      const x = original === undefined ? undefined : Object.fromEntries(Object.entries(original).map(([c, v]) => [renames[table]?.[c] ?? c, v]));
      const y = rb.get(key);
      if (x === undefined) rows.push(`${table.toLowerCase()} ${key} insert`);
      else if (y === undefined) rows.push(`${table.toLowerCase()} ${key} delete`);
      else {
        const changed = [...new Set([...Object.keys(x), ...Object.keys(y)])]
          .filter((c) => !(c in x) || !(c in y) || !sameValue(x[c], y[c])).sort();
        if (changed.length > 0) rows.push(`${table.toLowerCase()} ${key} update ${changed.join(',')}`);
      }
    }
  }
  return rows.sort();
}

/** Column renames from the state at seq `a` to the state at seq `b` (either direction). */
function renamesBetween(w: Workload, a: number, b: number): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const r of w.recorded.filter((r) => r.seq > Math.min(a, b) && r.seq <= Math.max(a, b))) {
    for (const [table, map] of Object.entries(r.renames)) {
      for (const [from, to] of Object.entries(map)) (result[table] ??= {})[a < b ? from : to] = a < b ? to : from;
    }
  }
  return result;
}

function got(result: ReturnType<typeof diffPoints>): string[] {
  return result.rows.map((r) => {
    const columns = r.op === 'update' ? ` ${[...new Set([...Object.keys(r.before ?? {}), ...Object.keys(r.after ?? {})])].sort().join(',')}` : '';
    return `${r.table.toLowerCase()} ${r.key} ${r.op}${columns}`;
  }).sort();
}

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
