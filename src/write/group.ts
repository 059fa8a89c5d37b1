/**
 * The queue of one process's pending `trail.write()` calls, cut into batches for group commit: every write
 * called while no batch is open starts one (and schedules a tenure task for it); later writes join it
 * until its task starts, or until something that must run alone (a migration, an undo) is queued, which
 * keeps entries in call order.
 */
import type { CommitRequest } from './commit.js';
import type { Entry } from './entry-view.js';

/** A write waiting for its group. */
export interface PendingWrite {
  readonly request: CommitRequest;
  resolve(entry: Entry | null): void;
  reject(error: unknown): void;
}

export class WriteGroups {
  readonly #schedule: (batch: PendingWrite[]) => Promise<void>;
  #open: PendingWrite[] | null = null;

  /** `schedule` queues the task that commits a batch; it must settle every write of it. */
  constructor(schedule: (batch: PendingWrite[]) => Promise<void>) {
    this.#schedule = schedule;
  }

  /** Queues `request` in the open batch (opening one) and resolves with its entry once committed. */
  submit(request: CommitRequest): Promise<Entry | null> {
    return new Promise((resolve, reject) => {
      if (this.#open === null) {
        const batch: PendingWrite[] = [];
        this.#open = batch;
        // The task settles every write itself; its own promise only needs a handler.
        this.#schedule(batch).catch((error: unknown) => {
          for (const write of batch) write.reject(error);
        });
      }
      this.#open.push({ request, resolve, reject });
    });
  }

  /** Later writes go into a new batch, queued after whatever the caller queues now. */
  close(): void {
    this.#open = null;
  }

  /** Called by a batch's task as it starts: writes called from now on form the next batch. */
  closeIfOpen(batch: PendingWrite[]): void {
    if (this.#open === batch) this.#open = null;
  }
}
