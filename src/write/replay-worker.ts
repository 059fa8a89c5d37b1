/**
 * Worker thread of `verify --replay` (read-only.ts): replays the journal into a scratch file and posts the
 * table digests back. In a worker, so the main thread stays free to handle Ctrl-C and remove the scratch
 * directory while a long replay runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChangetrailError } from '../errors.js';
import { openJournal } from '../journal/journal.js';
import type { OutboxFrame } from '../journal/outbox.js';
import type { Position } from '../journal/position.js';
import { replayInThread } from './read-only.js';

const { dir, head, target, outbox } = workerData as { dir: string; head: Position; target: string; outbox: OutboxFrame[] };
try {
  // The outbox rows read with the head: committed frames a crashed writer did not append yet.
  const digests = replayInThread(openJournal(dir, head, { outbox: () => outbox }), target);
  parentPort!.postMessage({ digests: [...digests] });
} catch (error) {
  if (!(error instanceof ChangetrailError)) throw error;
  parentPort!.postMessage({ error: error.toJSON() });
}
