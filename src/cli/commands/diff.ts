/** `changetrail diff <db> <A> [<B>]`: the net row-level difference between two points. */
import { diffPoints } from '../../audit/diff.js';
import type { RowValues } from '../../changeset/index.js';
import { defineCommand } from '../command.js';
import { valuesJson } from '../audit-output.js';
import { escapeControl, formatValue, formatValues, plural } from '../format.js';
import { trackedDatabase } from '../helpers.js';
import type { Output } from '../output.js';

export const diff = defineCommand({
  name: 'diff',
  summary: 'the net row-level difference between two points (seq, hash prefix or @time; B defaults to the head)',
  args: ['db', 'from', 'to?'],
  options: {
    stat: { type: 'boolean', description: 'per-table counts only (like git diff --stat)' },
    replay: { type: 'boolean', description: 'rebuild both states and compare them, even when combining the changesets would do' },
  },
  description: [
    'Rows inserted (+), deleted (-) and updated (~, with each changed column as [-before-]{+after+}) between',
    'the two states. Points: a seq (0 is genesis), an entry hash prefix, or @<time> (the last entry at or',
    'before it). With --json: one line per row {table, op, key, before, after}; with --stat --json, per table.',
  ].join('\n'),
  examples: ['changetrail diff app.db 10', 'changetrail diff app.db @2026-11-30T00:00Z @2026-12-02T00:00Z --stat', 'changetrail diff app.db 3b688f33 --json'],
  async run({ args, options, out }) {
    const [path, from, to] = args as [string, string, string | undefined];
    const result = diffPoints(trackedDatabase('diff', path), from, to, { method: options.replay === true ? 'replay' : 'auto' });
    if (out.json) {
      if (options.stat === true) for (const stat of result.stats) out.record({ ...stat, from: result.from.seq, to: result.to.seq });
      else for (const row of result.rows) out.record({ table: row.table, op: row.op, key: valuesJson(row.pk), before: valuesJson(row.before), after: valuesJson(row.after) });
      return 0;
    }
    out.line(out.paint(`diff #${result.from.seq}..#${result.to.seq}`, 'bold'));
    printStat(result.stats, out);
    if (options.stat !== true && result.rows.length > 0) out.line();
    if (options.stat !== true) {
      for (const row of result.rows) {
        const head = `${escapeControl(row.table)} ${formatValues(row.pk)}`;
        if (row.op === 'insert') out.line(out.paint(`+ ${head}: ${formatValues(withoutKey(row.after!, row.pk))}`, 'green'));
        else if (row.op === 'delete') out.line(out.paint(`- ${head}: ${formatValues(withoutKey(row.before!, row.pk))}`, 'red'));
        else out.line(`~ ${head}: ${wordDiff(row.before!, row.after!, out)}`);
      }
    }
    return 0;
  },
});

function printStat(stats: readonly { table: string; inserts: number; updates: number; deletes: number }[], out: Output): void {
  const width = Math.max(0, ...stats.map((s) => escapeControl(s.table).length));
  for (const s of stats) {
    const terms = [s.inserts > 0 ? out.paint(`+${s.inserts}`, 'green') : '', s.updates > 0 ? out.paint(`~${s.updates}`, 'yellow') : '', s.deletes > 0 ? out.paint(`-${s.deletes}`, 'red') : ''].filter((t) => t !== '');
    out.line(` ${escapeControl(s.table).padEnd(width)} | ${String(s.inserts + s.updates + s.deletes).padStart(4)} ${terms.join(' ')}`);
  }
  const sum = (key: 'inserts' | 'updates' | 'deletes') => stats.reduce((n, s) => n + s[key], 0);
  out.line(` ${plural(stats.length, 'table')} changed, ${plural(sum('inserts'), 'insertion')}(+), ${plural(sum('updates'), 'update')}(~), ${plural(sum('deletes'), 'deletion')}(-)`);
}

/** `name [-'bob'-]{+'Bobby'+}` per changed column, like git diff --word-diff=plain. */
function wordDiff(before: RowValues, after: RowValues, out: Output): string {
  const columns = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return columns.map((column) => {
    const from = Object.hasOwn(before, column) ? out.paint(`[-${formatValue(before[column]!)}-]`, 'red') : '';
    const to = Object.hasOwn(after, column) ? out.paint(`{+${formatValue(after[column]!)}+}`, 'green') : '';
    return `${escapeControl(column)} ${from}${to}`;
  }).join('  ');
}

function withoutKey(values: RowValues, pk: RowValues): RowValues {
  return Object.fromEntries(Object.entries(values).filter(([column]) => !Object.hasOwn(pk, column)));
}
