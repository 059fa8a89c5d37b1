/** What history, blame and diff must answer, computed from the states the workload recorded. */
import type { diffPoints } from '../../src/audit/diff.js';
import { changedRows, sameValue, type State, type Workload } from './workload.js';

export /** For every row the workload touched: the entries (seq, op) the test saw change it. */
function expectedHistories(workload: Workload): Map<string, { table: string; key: string; steps: { seq: number; op: string; row: Record<string, unknown> | null }[] }> {
  const rows = new Map<string, { table: string; key: string; steps: { seq: number; op: string; row: Record<string, unknown> | null }[] }>();
  for (let i = 1; i < workload.recorded.length; i++) {
    const before = workload.recorded[i - 1]!;
    const after = workload.recorded[i]!;
    for (const [id, change] of changedRows(before.state, after.state, after.renames, after.added)) {
      let row = rows.get(id);
      if (row === undefined) rows.set(id, (row = { table: change.table, key: change.key, steps: [] }));
      row.steps.push({ seq: after.seq, op: change.op, row: change.row });
    }
  }
  return rows;
}


/** table + JSON key → the seq that last changed each row present at the end (0: unchanged since genesis). */
export function expectedBlame(workload: Workload): Map<string, number> {
  const last = workload.recorded.at(-1)!;
  const expected = new Map<string, number>();
  for (const [table, rows] of last.state) for (const key of rows.keys()) expected.set(`${table} ${key}`, 0);
  for (const [id, history] of expectedHistories(workload)) {
    const final = history.steps.at(-1)!;
    const [table] = id.split(' ');
    const name = [...last.state.keys()].find((t) => t.toLowerCase() === table)!;
    if (final.op !== 'delete') expected.set(`${name} ${history.key}`, final.seq);
  }
  return expected;
}

/** The difference of two recorded states, by name: what diff must report. */
export function expectedDiff(a: State, b: State, renames: Record<string, Record<string, string>> = {}): string[] {
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
export function renamesBetween(w: Workload, a: number, b: number): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const r of w.recorded.filter((r) => r.seq > Math.min(a, b) && r.seq <= Math.max(a, b))) {
    for (const [table, map] of Object.entries(r.renames)) {
      for (const [from, to] of Object.entries(map)) (result[table] ??= {})[a < b ? from : to] = a < b ? to : from;
    }
  }
  return result;
}

export function got(result: ReturnType<typeof diffPoints>): string[] {
  return result.rows.map((r) => {
    const columns = r.op === 'update' ? ` ${[...new Set([...Object.keys(r.before ?? {}), ...Object.keys(r.after ?? {})])].sort().join(',')}` : '';
    return `${r.table.toLowerCase()} ${r.key} ${r.op}${columns}`;
  }).sort();
}

