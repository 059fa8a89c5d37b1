/**
 * The outbox protocol under SIGKILL with a reader running throughout (issue 10 item 1): one database, a
 * writer process killed at every point of the write path in turn (several hits each), and a read-only
 * reader process polling the whole time. Afterwards: every acknowledged write is present exactly once,
 * seqs contiguous, the chain valid, replay equals the database (checkInvariants), and every entry the
 * reader ever saw is the committed entry of that seq — it never saw an uncommitted or a missing one.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { CRASH_POINTS, DIRECT_CRASH_POINTS } from '../../src/write/crashpoint.js';
import { checkInvariants, committedHashes, workloadDatabase } from '../helpers/checker.js';
import { readerProblems, startReader, startWriter } from '../helpers/processes.js';

const ROWS = 3;
/** A reader may find a crashed writer's hot rollback journal, which only a writer may roll back. */
const TRANSIENT_READ_ERRORS = new Set(['RECOVERY_NEEDED']);

describe('outbox protocol: writers SIGKILLed at every point while a reader runs throughout', () => {
  it('ok: every acknowledged write once, replay equals the database, and the reader saw only committed entries', async () => {
    const path = workloadDatabase('ct-outbox-crash-');
    await (await openTrail(path)).close();
    const stopFile = join(dirname(path), 'stop');
    const reader = startReader(path, stopFile);
    const acked: string[] = [];
    const runs = [...CRASH_POINTS.map((point) => [point, {}] as const),
      ...DIRECT_CRASH_POINTS.map((point) => [point, { CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: '0' }] as const)];
    let kills = 0;
    for (const [point, env] of runs) {
      for (const hit of [1, 2]) {
        const writer = startWriter(path, 8, ROWS, { ...env, CT_WRITE_GAP_MS: '3', CHANGETRAIL_SEGMENT_SYNC_MS: '0', CHANGETRAIL_CRASH_AT: `${point}:${hit}` });
        const exit = await writer.exited;
        expect(exit.signal, `${point}:${hit} ${writer.stderr()}`).toBe('SIGKILL');
        kills += 1;
        acked.push(...writer.acked);
        // Let the reader look at what the crash left before the next writer repairs it.
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    }
    const last = startWriter(path, 3, ROWS);
    expect((await last.exited).code, last.stderr()).toBe(0);
    acked.push(...last.acked);
    writeFileSync(stopFile, '');
    expect(await reader.exited).toBe(0);

    const { headSeq } = await checkInvariants(path, acked, ROWS);
    const committed = await committedHashes(path);
    expect(committed.size).toBe(headSeq);
    expect(readerProblems(reader, committed, TRANSIENT_READ_ERRORS)).toEqual([]);
    const observed = reader.lines.filter((line) => line.startsWith('obs '));
    // The reader kept up: it saw most entries as they were committed, not only at the end.
    expect(observed.length).toBe(headSeq);
    expect(kills).toBe(runs.length * 2);
    expect(Number(reader.lines.find((line) => line.startsWith('reads '))!.split(' ')[1])).toBeGreaterThan(kills);
  }, 120_000);
});
