/** The audit commands, run as real processes against the built CLI (dist/cli/main.js). */
import { describe, expect, it } from 'vitest';
import { cli, cliDatabase, ndjson } from './cli-helpers.js';

describe('changetrail history / blame (CLI)', async () => {
  it('ok: history --json is NDJSON, oldest first, with before → after and indirect cascade deletes', async () => {
    const path = await cliDatabase();
    const history = cli('history', path, 't', '1', '--json');
    expect(history.code, history.stderr).toBe(0);
    const steps = ndjson(history.stdout);
    expect(steps.map((s) => [s.seq, s.op, s.actor])).toEqual([[1, 'insert', 'alice'], [3, 'update', 'carol']]);
    expect(steps[1]).toMatchObject({ message: 'fix name', before: { name: 'ada', n: 1 }, after: { name: 'Ada', n: 10 }, indirect: false });
    const child = ndjson(cli('history', path, 'c', '2', 'y', '--json').stdout);
    expect(child.map((s) => [s.seq, s.op, s.indirect])).toEqual([[2, 'insert', false], [4, 'delete', true]]);
    const human = cli('history', path, 't', '1');
    expect(human.stdout).toContain('name: \'ada\' → \'Ada\'');
    expect(cli('history', path, 't', '1', '--scan', '--json').stdout).toBe(history.stdout);
  });

  it('ok: blame per row and per column', async () => {
    const path = await cliDatabase();
    const lines = ndjson(cli('blame', path, 't', '--json').stdout);
    expect(lines.map((l) => [l.key, l.seq, l.actor])).toEqual([[['1'], 3, 'carol']]);
    const one = ndjson(cli('blame', path, 'c', '--where', '1', '--where', 'x', '--json').stdout);
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ seq: 2, actor: 'bob', columns: { t_id: { seq: 2 }, k: { seq: 2 } } });
    const byColumn = ndjson(cli('blame', path, 't', '--where', '1', '--json').stdout)[0]!;
    expect(byColumn.columns).toMatchObject({ id: { seq: 1 }, name: { seq: 3, actor: 'carol' }, n: { seq: 3 } });
  });

  it('err: usage', async () => {
    const path = await cliDatabase();
    const result = cli('history', path, 't', '--json');
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr).error.code).toBe('CLI_USAGE');
  });
});
