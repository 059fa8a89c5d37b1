import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditIndexPath } from '../../src/audit/audit-index.js';
import { filterLog, type LogFilter } from '../../src/audit/log-filter.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { hashPrefixSpec } from '../helpers/random.js';
import { cli, ndjson } from './cli-helpers.js';
import { runWorkload, type Workload } from './workload.js';

let cached: Promise<Workload> | null = null;
const workload = () => (cached ??= runWorkload(21, 45));

function allEntries(w: Workload) {
  return [...openJournal(w.journalDir, readCommittedHead(w.path)).entries()];
}

describe('filterLog', () => {
  it('ok: every filter, indexed and scanned, equals a filter over all entries', async () => {
    const w = await workload();
    const entries = allEntries(w);
    const times = entries.map((e) => e.time);
    const middle = entries[Math.floor(entries.length / 2)]!;
    const cases: [LogFilter, (e: (typeof entries)[number]) => boolean][] = [
      [{ actor: 'alice' }, (e) => e.actor === 'alice'],
      [{ actor: 'bob', table: 'items' }, (e) => e.actor === 'bob' && e.tables.some((t) => t.table === 'items')],
      [{ table: 'PARTS' }, (e) => e.tables.some((t) => t.table === 'parts')],
      [{ kind: 'schema' }, (e) => e.kind === 'schema'],
      [{ since: 10, until: '20' }, (e) => e.seq >= 10 && e.seq <= 20],
      [{ since: hashPrefixSpec(Buffer.from(middle.hash).toString('hex'), 12) }, (e) => e.seq >= middle.seq],
      [{ since: `@${new Date(times[5]!).toISOString()}` }, (e) => e.time >= times[5]!],
      [{ grep: 'step 1' }, (e) => (e.message ?? '').includes('step 1')],
      [{ meta: { team: 'even' } }, (e) => e.meta?.team === 'even'],
      [{ meta: { step: '4' } }, (e) => e.meta?.step === 4],
      [{ actor: 'carol', limit: 2 }, (e) => e.actor === 'carol'],
      [{ actor: 'carol', reverse: true, limit: 3 }, (e) => e.actor === 'carol'],
    ];
    for (const [filter, predicate] of cases) {
      let want = entries.filter(predicate).map((e) => e.seq);
      if (filter.reverse === true) want.reverse();
      if (filter.limit !== undefined) want = want.slice(0, filter.limit);
      expect(want.length, JSON.stringify(filter)).toBeGreaterThan(0);
      for (const index of ['auto', 'off'] as const) expect(filterLog(w.path, filter, { index }).map((e) => e.seq), `${JSON.stringify(filter)} ${index}`).toEqual(want);
    }
    // A resync changed rows of items (the foreign write): --table finds it though its counts are empty.
    const resyncs = entries.filter((e) => e.kind === 'resync').map((e) => e.seq);
    expect(filterLog(w.path, { table: 'items', kind: 'resync' }).map((e) => e.seq)).toEqual(resyncs);
  });

  it('ok: the CLI: plain log creates no index; a filter does; --oneline and --json', async () => {
    const w = await workload();
    rmSync(auditIndexPath(w.journalDir), { force: true });
    expect(cli('log', w.path, '--limit', '3', '--json').code).toBe(0);
    expect(existsSync(auditIndexPath(w.journalDir))).toBe(false);
    const result = cli('log', w.path, '--actor', 'alice', '--table', 'items', '--json');
    expect(result.code, result.stderr).toBe(0);
    expect(ndjson(result.stdout).map((l) => l.seq)).toEqual(filterLog(w.path, { actor: 'alice', table: 'items' }, { index: 'off' }).map((e) => e.seq));
    expect(existsSync(auditIndexPath(w.journalDir))).toBe(true);
    const oneline = cli('log', w.path, '--actor', 'alice', '--oneline', '--reverse', '--limit', '2');
    expect(oneline.stdout.trim().split('\n')).toHaveLength(2);
    const bad = cli('log', w.path, '--kind', 'nope', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.code).toBe('CLI_USAGE');
    const missing = cli('log', w.path, '--since', 'ffffffffffff', '--json');
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr).error.code).toBe('POSITION_NOT_FOUND');
  });
});
