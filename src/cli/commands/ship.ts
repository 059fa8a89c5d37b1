/** `changetrail ship <db> nats://host:4222/<name>`: publish the journal to NATS JetStream for remote replicas. */
import type { ShipStatus } from '../../replica/nats-ship.js';
import { isNatsAddress } from '../../replica/nats-address.js';
import { FOLLOWER_NAME } from '../../journal/retention-pins.js';
import { defineCommand, usage } from '../command.js';
import { escapeControl, shortHash } from '../format.js';
import { NATS_OPTIONS, natsOptionsFrom, printNatsEvent, untilConnected } from '../nats-options.js';
import type { Output } from '../output.js';

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
/** How often `--follow` reports its position (a status line on a TTY, an NDJSON record with --json). */
const STATUS_INTERVAL_MS = 5_000;

export const ship = defineCommand({
  name: 'ship',
  summary: 'publish the journal to a NATS JetStream stream for replicas on other machines (--follow keeps it up)',
  args: ['db', 'nats-address'],
  options: {
    follow: { type: 'boolean', description: 'keep shipping as the primary commits, until SIGINT/SIGTERM' },
    replicas: { type: 'string', value: 'n', description: 'replicas of the stream and bucket when ship creates them (1-5, default 1)' },
    register: { type: 'string', value: 'name', description: 'the retention follower the shipper registers as in the journal, so pruning keeps what is not shipped yet (default nats-<name>)' },
    ...NATS_OPTIONS,
  },
  description: '<nats-address> is nats://host:4222/<name> (tls://… for TLS; nats:///<name> uses NATS_URL). The stream <name>\n' +
    'gets one message per committed entry (its frame, CRC and chain intact; message id = entry hash); genesis.db\n' +
    'and resync snapshots go to the Object Store bucket <name>-files. Every publish expects the previous entry\n' +
    'to be the stream\'s last, so a second or stale shipper cannot interleave or fork the stream. After a crash,\n' +
    'ship reads the stream\'s last entry, checks it against the journal and continues; a stream holding another\n' +
    'history is refused. Without --follow it exits once the stream holds the committed head.\n' +
    'The position the stream holds is registered as a retention follower of the journal (--register), so\n' +
    'pruning keeps what is not shipped yet; a shipper past the hold limits finds it pruned (HISTORY_PRUNED),\n' +
    'uploads the base checkpoint and re-bases the stream on it (followers then rebase too).',
  examples: ['changetrail ship app.db nats://127.0.0.1:4222/app', 'changetrail ship app.db nats://n1:4222/app --server nats://n2:4222 --server nats://n3:4222 --replicas 3 --follow'],
  async run({ args, options, out }) {
    if (!isNatsAddress(args[1]!)) throw usage('ship', `${args[1]} is not a NATS address; use nats://host:4222/<name>`);
    const replicas = options.replicas === undefined ? 1 : Number(options.replicas);
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw usage('ship', '--replicas takes 1 to 5');
    if (options.register !== undefined && !FOLLOWER_NAME.test(options.register)) throw usage('ship', '--register takes a name of 1-128 letters, digits, ., _ and -, starting with a letter or digit');
    const controller = new AbortController();
    let stoppedBy: 'SIGINT' | 'SIGTERM' | null = null;
    const stop = (signal: 'SIGINT' | 'SIGTERM') => (): void => {
      stoppedBy = signal;
      controller.abort();
    };
    const onSigint = stop('SIGINT');
    const onSigterm = stop('SIGTERM');
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigterm);
    try {
      // The NATS client (~40 ms to load) is imported by this command only, not by every command.
      const { shipJournal } = await import('../../replica/nats-ship.js');
      const start = (): ReturnType<typeof shipJournal> =>
        shipJournal(args[0]!, {
          ...natsOptionsFrom(args[1]!, options, 'ship'), follow: options.follow ?? false, replicas, signal: controller.signal,
          ...(options.register === undefined ? {} : { followerName: options.register }),
          ...(options.follow ? { onEvent: printNatsEvent('ship', out) } : {}),
        });
      const shipper = options.follow ? await untilConnected(start, controller.signal, out) : await start();
      if (options.follow && !out.json) out.notice(`shipping ${escapeControl(shipper.status().database)} to ${escapeControl(shipper.status().target)} (Ctrl-C stops)`);
      const stopReports = options.follow ? reportPeriodically(() => shipper.status(), out) : () => undefined;
      controller.signal.addEventListener('abort', () => void shipper.close(), { once: true });
      let status: ShipStatus;
      try {
        status = await shipper.done;
      } finally {
        stopReports();
        await shipper.close();
      }
      out.emit(status, () => describe(status));
      return stoppedBy === null || options.follow ? 0 : SIGNAL_EXIT_CODES[stoppedBy];
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    }
  },
});

function describe(status: ShipStatus): string {
  const target = escapeControl(status.target);
  const lag = status.lagEntries === 0 ? 'up to date' : `${status.lagEntries} entries behind the head (${status.headSeq})`;
  return `${target}: holds entry ${status.shippedSeq} ${shortHash(status.shippedHash)} of ${escapeControl(status.database)}, ${lag}; ${status.publishedCount} published (journal ${status.journalId})`;
}

/** A status line every few seconds while following: on stderr for people, as NDJSON on stdout with --json. */
function reportPeriodically(read: () => ShipStatus, out: Output): () => void {
  if (!out.json && process.stderr.isTTY !== true) return () => undefined;
  const timer = setInterval(() => {
    const status = read();
    if (out.json) out.record({ ...status, kind: 'progress' });
    else process.stderr.write(`\r\u001b[Kshipped ${status.shippedSeq}/${status.headSeq}, lag ${status.lagEntries} entries / ${Math.round(status.lagMs)} ms`);
  }, STATUS_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (!out.json) process.stderr.write('\r\u001b[K');
  };
}
