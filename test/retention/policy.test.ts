/** The retention policy: keep limits, checkpoint cadence, the background pass, `changetrail retention`. */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Trail } from '../../src/index.js';
import { readRetentionPolicy, writeRetentionPolicy } from '../../src/write/retention-policy.js';
import { tempTrail } from '../helpers/db.js';
import { cli } from '../cli/run-cli.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup() {
  const result = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { segmentBytesTarget: 2048 });
  opened.push(result.trail);
  return result;
}

async function insert(trail: Trail, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await trail.write((db) => db.prepare('INSERT OR REPLACE INTO t VALUES (?, ?)').run(i % 20, `v${i}`.repeat(10)));
}

describe('retention policy', () => {
  it('ok: checkpoints every N entries and prunes only as far as keepEntries allows', async () => {
    const { trail, path } = await setup();
    writeRetentionPolicy(`${path}.changes`, { keepEntries: 25, checkpointEveryEntries: 10 });
    for (let round = 0; round < 6; round++) {
      await insert(trail, round * 10, 10);
      await trail.applyRetention();
    }
    const state = trail.retentionState();
    const head = (await trail.status()).headSeq;
    expect(state.base).not.toBeNull();
    expect(head - state.base!.seq).toBeGreaterThanOrEqual(25);
    expect(state.lastPass?.error).toBeNull();
    expect((await trail.verify({ replay: true })).retainedAfter).toBe(state.base!.seq);
  });

  it('ok: keepMs and keepBytes hold pruning back; prune: false only checkpoints', async () => {
    const { trail, path } = await setup();
    const dir = `${path}.changes`;
    writeRetentionPolicy(dir, { keepMs: 3_600_000, checkpointEveryEntries: 5 });
    await insert(trail, 0, 12);
    const pass = await trail.applyRetention();
    // The checkpoint is this pass's, or a background pass's after the last write (either may come first).
    expect(readdirSync(dir).some((name) => name.startsWith('checkpoint-'))).toBe(true);
    expect(pass.prunedTo).toBeNull(); // every checkpoint is younger than an hour
    writeRetentionPolicy(dir, { keepBytes: 1 << 30, checkpointEveryEntries: 5 });
    await insert(trail, 12, 12);
    expect((await trail.applyRetention()).prunedTo).toBeNull();
    writeRetentionPolicy(dir, { keepEntries: 0, checkpointEveryEntries: 5, prune: false });
    await insert(trail, 24, 6);
    expect((await trail.applyRetention()).prunedTo).toBeNull();
    writeRetentionPolicy(dir, { keepEntries: 0, checkpointEveryEntries: 5 });
    await trail.applyRetention(); // (a background pass after the last write may have pruned first)
    expect(trail.retentionState().base?.seq).toBeGreaterThan(0);
  });

  it('ok: writers apply it in the background of their writes', async () => {
    const { trail, path } = await setup();
    writeRetentionPolicy(`${path}.changes`, { keepEntries: 5, checkpointEveryEntries: 5 });
    const deadline = Date.now() + 20_000;
    let i = 0;
    while (trail.retentionState().base === null && Date.now() < deadline) {
      await insert(trail, i, 5);
      i += 5;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(trail.retentionState().base).not.toBeNull();
    expect(trail.retentionState().lastPass?.error ?? null).toBeNull();
  });

  it('err: an invalid policy file fails the pass, never a write', async () => {
    const { trail, path } = await setup();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${path}.changes/retention.json`, '{"keepEntries": "many"}');
    await insert(trail, 0, 3);
    const pass = await trail.applyRetention();
    expect(pass.error?.code).toBe('JOURNAL_MALFORMED');
    await insert(trail, 3, 1);
  });

  it('ok: changetrail retention sets, shows and applies the policy', async () => {
    const { trail, path } = await setup();
    await insert(trail, 0, 12);
    await trail.close();
    opened.splice(0);
    const set = cli(['retention', path, '--keep-entries', '3', '--checkpoint-every-entries', '4', '--apply', '--json']);
    expect(set.code, set.stderr).toBe(0);
    const report = JSON.parse(set.stdout);
    expect(report.policy).toEqual({ keepEntries: 3, checkpointEveryEntries: 4 });
    expect(report.pass.checkpointSeq).toBe(13);
    expect(readRetentionPolicy(`${path}.changes`)).toEqual({ keepEntries: 3, checkpointEveryEntries: 4 });
    const shown = cli(['retention', path]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/keep 3 entries, checkpoint every 4 entries/);
    expect(cli(['retention', path, '--keep-entries', 'lots']).code).toBe(2);
  });

  it('ok: the human output shows the follower hold settings, as --json does', async () => {
    const { trail, path } = await setup();
    await trail.close();
    opened.splice(0);
    const defaults = cli(['retention', path, '--keep-entries', '3']);
    expect(defaults.code, defaults.stderr).toBe(0);
    expect(defaults.stdout).toMatch(/^followers: held for up to 1000000 entries behind the head, 7 days silent \(defaults\)$/m);
    const set = cli(['retention', path, '--hold-entries-max', '500', '--hold-stale-days', '1.5']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^followers: held for up to 500 entries behind the head, 1.5 days silent$/m);
    expect(JSON.parse(cli(['retention', path, '--json']).stdout).policy.followers).toEqual({ entriesMax: 500, staleAfterMs: 1.5 * 24 * 60 * 60 * 1000 });
  });
});
