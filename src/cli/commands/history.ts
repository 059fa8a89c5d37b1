/** `changetrail history <db> <table> <key...>`: every entry that changed one row, oldest first. */
import { rowHistory } from '../../audit/history.js';
import { retainedBaseOf } from '../../journal/retention-base.js';
import { defineCommand } from '../command.js';
import { formatAttribution, formatColumnChanges, valuesJson } from '../audit-output.js';
import { escapeControl, formatValues } from '../format.js';
import { trackedDatabase } from '../helpers.js';

export const history = defineCommand({
  name: 'history',
  summary: 'every entry that changed one row, oldest first, with its columns before → after',
  args: ['db', 'table', 'key...'],
  options: {
    scan: { type: 'boolean', description: 'answer by reading the whole journal (ignore the audit index)' },
  },
  description: [
    'The key is the row\'s PRIMARY KEY values in PRIMARY KEY order, as text. Each step shows the entry',
    '(number, hash, time, actor, message), the operation and the changed columns with the names they had',
    'at that entry; changes made by triggers and foreign-key actions are marked indirect, and rows that a',
    'resync changed are found by comparing its snapshot with the state before it.',
  ].join('\n'),
  examples: ['changetrail history app.db invoices 42', 'changetrail history app.db tags rust 7 --json'],
  async run({ args, options, out }) {
    const [path, table, ...key] = args as [string, string, ...string[]];
    const db = trackedDatabase('history', path);
    const steps = rowHistory(db, { table, key }, { index: options.scan === true ? 'off' : 'auto' });
    for (const step of steps) {
      if (out.json) {
        out.record({
          seq: step.seq, hash: step.hash, kind: step.kind, time: step.time.toISOString(), actor: step.actor, message: step.message,
          ...(step.undoes === undefined ? {} : { undoes: step.undoes }), table: step.table, op: step.op, indirect: step.indirect,
          key: valuesJson(step.pk), before: valuesJson(step.before), after: valuesJson(step.after),
        });
        continue;
      }
      const undoes = step.undoes === undefined ? '' : `  ${out.paint(`undoes #${step.undoes}`, 'cyan')}`;
      out.line(`${out.paint(formatAttribution(step), 'yellow')}${undoes}`);
      out.line(`    ${step.op}${step.indirect ? ' (indirect: trigger or foreign-key action)' : ''} ${escapeControl(step.table)} ${formatValues(step.pk)}`);
      for (const line of formatColumnChanges(step.before, step.after, '      ', step.pk)) out.line(line);
    }
    if (!out.json && steps.length === 0) out.line(`no entry changed ${escapeControl(table)} ${escapeControl(JSON.stringify(key))}`);
    // A pruned journal says where the history shown begins (FORMAT.md §11), in human output only.
    const base = out.json ? null : retainedBaseOf(`${db}.changes`);
    if (base !== null) out.line(`(history before entry ${base.seq + 1} was pruned: changes before it are not shown)`);
    return 0;
  },
});
