import { existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { auditIndexPath, openAuditIndex } from '../../src/audit/audit-index.js';
import { openAuditJournal } from '../../src/audit/audit-journal.js';
import { blame } from '../../src/audit/blame.js';
import { rowHistory } from '../../src/audit/history.js';
import { openTrail } from '../../src/index.js';
import { runWorkload, type Workload } from './workload.js';

const ROWS: [string, string[]][] = [['items', ['1']], ['items', ['2']], ['items', ['5']], ['kv', ['k1']], ['parts', ['p0', '1']], ['counters', ['writes']]];

function answers(w: Workload): unknown {
  return {
    history: ROWS.map(([table, key]) => rowHistory(w.path, { table, key }).map((s) => [s.seq, s.op, s.indirect, s.after])),
    blame: ['items', 'parts', 'kv'].map((t) => blame(w.path, t).map((l) => [l.key, l.seq])),
  };
}

function scanned(w: Workload): unknown {
  return {
    history: ROWS.map(([table, key]) => rowHistory(w.path, { table, key }, { index: 'off' }).map((s) => [s.seq, s.op, s.indirect, s.after])),
    blame: ['items', 'parts', 'kv'].map((t) => blame(w.path, t, { index: 'off' }).map((l) => [l.key, l.seq])),
  };
}

let cached: Promise<{ w: Workload; truth: unknown }> | null = null;
const setup = () => (cached ??= runWorkload(7, 40).then((w) => ({ w, truth: scanned(w) })));

describe('audit index damage', () => {
  it('ok: built on first use, then current; answers equal the scan', async () => {
    const { w, truth } = await setup();
    expect(answers(w)).toEqual(truth);
    expect(existsSync(auditIndexPath(w.journalDir))).toBe(true);
    const journal = openAuditJournal(w.path);
    const index = openAuditIndex(journal)!;
    expect(index.coveredSeq).toBe(journal.head.seq);
    index.close();
  });

  it('ok: deleted → rebuilt', async () => {
    const { w, truth } = await setup();
    answers(w);
    rmSync(auditIndexPath(w.journalDir));
    expect(answers(w)).toEqual(truth);
    writeFileSync(auditIndexPath(w.journalDir), '');
    expect(answers(w)).toEqual(truth);
  });

  it('ok: truncated mid-file → rebuilt', async () => {
    const { w, truth } = await setup();
    answers(w);
    const path = auditIndexPath(w.journalDir);
    truncateSync(path, Math.floor(statSync(path).size / 2));
    expect(answers(w)).toEqual(truth);
  });

  it('ok: garbage written mid-file → rebuilt or bypassed', async () => {
    const { w, truth } = await setup();
    for (const fraction of [0.3, 0.5, 0.7, 0.9]) {
      answers(w);
      const path = auditIndexPath(w.journalDir);
      const bytes = readFileSync(path);
      const at = Math.floor(bytes.byteLength * fraction);
      bytes.fill(0xa5, at, Math.min(bytes.byteLength, at + 700));
      writeFileSync(path, bytes);
      expect(answers(w), `garbage at ${fraction}`).toEqual(truth);
    }
  });

  it('ok: a posting removed or a summary changed through SQL (a consistent but wrong file) → detected', async () => {
    const { w, truth } = await setup();
    for (const tamper of [
      `DELETE FROM postings WHERE rowid IN (SELECT rowid FROM postings LIMIT 1)`.replace('rowid IN (SELECT rowid FROM postings LIMIT 1)', `(tbl, key, seq) IN (SELECT tbl, key, seq FROM postings WHERE tbl = 'items' AND key = '["2"]' LIMIT 1 OFFSET 1)`),
      `UPDATE rows SET last = last - 1 WHERE tbl = 'items' AND key = '["2"]'`,
      `UPDATE entries SET offset = offset + 1 WHERE seq = (SELECT max(seq) FROM postings WHERE tbl = 'items' AND key = '["5"]')`,
      `UPDATE meta SET hash = zeroblob(32)`,
    ]) {
      answers(w);
      const db = new DatabaseSync(auditIndexPath(w.journalDir));
      db.exec(tamper);
      db.close();
      expect(answers(w), tamper).toEqual(truth);
    }
  });

  it('ok: incremental update after further writes; a rewritten journal makes the index rebuild', async () => {
    const { w } = await setup();
    answers(w);
    const trail = await openTrail(w.path);
    await trail.write((db) => db.prepare(`UPDATE items SET name = 'later' WHERE id = (SELECT min(id) FROM items)`).run(), { actor: 'zed' });
    await trail.close();
    expect(answers(w)).toEqual(scanned(w));
    const first = blame(w.path, 'items')[0]!;
    expect(first.actor).toBe('zed');
  });
});

describe('audit index without write access', () => {
  it('ok: an index behind the head is used as far as it goes; the newer entries are read from the journal', async () => {
    const { w } = await setup();
    answers(w);
    const trail = await openTrail(w.path);
    for (const name of ['r1', 'r2', 'r3']) await trail.write((db) => db.prepare(`UPDATE items SET name = ? WHERE id = (SELECT max(id) FROM items)`).run(name), { actor: 'reader-test' });
    await trail.close();
    const journal = openAuditJournal(w.path);
    const index = openAuditIndex(journal, 'read')!;
    expect(journal.head.seq - index.coveredSeq).toBe(3);
    expect(index.tail.map((e) => e.seq)).toEqual([journal.head.seq - 2, journal.head.seq - 1, journal.head.seq]);
    index.close();
    const read = ROWS.map(([table, key]) => rowHistory(w.path, { table, key }, { index: 'read' }).map((s) => [s.seq, s.op]));
    expect(read).toEqual(ROWS.map(([table, key]) => rowHistory(w.path, { table, key }, { index: 'off' }).map((s) => [s.seq, s.op])));
    expect(blame(w.path, 'items', { index: 'read' })).toEqual(blame(w.path, 'items', { index: 'off' }));
    // 'read' left the file as it was.
    const after = openAuditIndex(openAuditJournal(w.path), 'read')!;
    expect(after.coveredSeq).toBe(index.coveredSeq);
    after.close();
  });
});
