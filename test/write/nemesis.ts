/**
 * The SIGKILL/SIGSTOP nemesis of issue 8 (items 3 and 4): a healthy long-running writer, which also
 * queues writes that net to nothing, runs throughout while victim writers are started and SIGKILLed at
 * random moments — half of them with a tiny page cache, so that dirty pages are spilled and a kill leaves
 * a hot rollback journal — and some are SIGSTOPped first (then killed, or resumed and fenced). Afterwards:
 * no process ever saw FOREIGN_WRITE_DETECTED (or any other error), and every acknowledged write is in the
 * database and the journal exactly once (checkInvariants).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openTrail } from '../../src/index.js';
import { checkInvariants, committedHashes, workloadDatabase } from '../helpers/checker.js';
import { readerProblems, startReader, startWriter, waitFor, type WriterRun } from '../helpers/processes.js';

const ROWS = 4;

export interface NemesisReport {
  kills: number;
  /** Victims killed after at least one acknowledged write of their own. */
  killedWriting: number;
  /** Victims killed (or stopped) inside the body of their first write, typically with a hot journal. */
  killedInFirstBody: number;
  stops: number;
  resumed: number;
  acked: number;
  fenced: number;
  falseForeignWrites: number;
  errors: string[];
  headSeq: number;
  /** Entries a read-only reader polling throughout saw (each checked against the committed journal). */
  readerObserved: number;
  /** What it saw that was not committed history, or errors other than RECOVERY_NEEDED and DATABASE_BUSY. */
  readerProblems: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runNemesis(options: { kills: number; victims: number }): Promise<NemesisReport> {
  const path = workloadDatabase('ct-nemesis-');
  await (await openTrail(path)).close();
  const stopFile = join(dirname(path), 'stop');
  const env = { CT_STALE_MS: '800', CT_HEARTBEAT_MS: '200', CT_NOOP_EVERY: '3', CT_STOP_FILE: stopFile };
  const healthy = startWriter(path, 1_000_000, ROWS, env);
  const reader = startReader(path, stopFile);
  const runs: WriterRun[] = [healthy];
  const report = { kills: 0, killedWriting: 0, killedInFirstBody: 0, stops: 0, resumed: 0 };
  const victimLoop = async (): Promise<void> => {
    while (report.kills < options.kills) {
      const spill = Math.random() < 0.5;
      const victim = spill
        ? startWriter(path, 1_000_000, ROWS, { ...env, CT_CACHE_PAGES: '2', CT_PAYLOAD_BYTES: '1500', CT_TRACE_BODY: '1' }, 40)
        // Half of the plain victims keep 4 writes in flight: killed mid-group, or while their group commits.
        : startWriter(path, 1_000_000, ROWS, Math.random() < 0.5 ? { ...env, CT_IN_FLIGHT: '4' } : env, 0);
      runs.push(victim);
      if (spill) {
        // Inside the body of its first write (the first of its admission), its pages already spilled: a
        // kill there leaves a hot journal and a head row exactly as the last writer left it (issue 8 item 4).
        await waitFor(() => victim.began.length > 0 || victim.child.exitCode !== null, 10_000, 'a victim to begin').catch(() => undefined);
        await sleep(Math.random() * 15);
      } else {
        // Mostly mid-stream (after its first acknowledged write), sometimes earlier.
        if (Math.random() < 0.8) await waitFor(() => victim.acked.length > 0 || victim.child.exitCode !== null, 10_000, 'a victim to write').catch(() => undefined);
        await sleep(Math.random() * 120);
      }
      if (victim.acked.length > 0) report.killedWriting += 1;
      if (victim.acked.length === 0 && victim.began.length > 0) report.killedInFirstBody += 1;
      if (Math.random() < 0.25) {
        victim.child.kill('SIGSTOP');
        report.stops += 1;
        await sleep(50 + Math.random() * 1200);
        if (Math.random() < 0.5) {
          // Resumed after others may have taken its lock over: it is fenced and carries on.
          victim.child.kill('SIGCONT');
          report.resumed += 1;
          await sleep(20 + Math.random() * 200);
        }
      }
      victim.child.kill('SIGKILL');
      report.kills += 1;
      await victim.exited;
    }
  };
  await Promise.all(Array.from({ length: options.victims }, victimLoop));
  // The healthy writer must still be writing (it never failed), then stops on its own.
  const before = healthy.acked.length;
  await waitFor(() => healthy.acked.length > before || healthy.child.exitCode !== null, 30_000, 'the healthy writer to write again');
  writeFileSync(stopFile, '');
  const exit = await healthy.exited;
  await reader.exited;
  const errors = runs.map((r) => r.stderr().trim()).filter((text) => text.length > 0);
  if (exit.code !== 0) errors.push(`healthy writer exited with ${exit.code ?? exit.signal}`);
  const acked = runs.flatMap((r) => r.acked);
  const { headSeq } = await checkInvariants(path, acked, ROWS);
  const committed = await committedHashes(path);
  return {
    ...report, acked: acked.length, fenced: runs.reduce((n, r) => n + r.fenced.length, 0),
    falseForeignWrites: errors.filter((e) => e.includes('FOREIGN_WRITE_DETECTED')).length, errors, headSeq,
    readerObserved: reader.lines.filter((line) => line.startsWith('obs ')).length,
    // A victim SIGSTOPped while it holds SQLite's lock (its pages spilled, or mid-commit) blocks every reader
    // in rollback mode; under load the reader's 2 s busy timeout runs out: DATABASE_BUSY, as for any reader.
    readerProblems: readerProblems(reader, committed, new Set(['RECOVERY_NEEDED', 'DATABASE_BUSY'])),
  };
}
