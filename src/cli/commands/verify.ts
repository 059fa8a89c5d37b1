/** `changetrail verify <db>`: check the whole journal (and, with --replay, the database against it). */
import { openTrailReader } from '../../write/read-only.js';
import { ChangetrailError } from '../../errors.js';
import { defineCommand, usage } from '../command.js';
import { escapeControl, plural, shortHash } from '../format.js';
import { readFileSync } from 'node:fs';
import { verifySignedHead } from '../../audit/signed-head.js';
import { readVerifierKey } from '../../audit/signed-note.js';
import { trackedDatabase } from '../helpers.js';

/** Exit codes of a command stopped by a signal, as shells report them (128 + signal number). */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

export const verify = defineCommand({
  name: 'verify',
  summary: 'check the hash chain and snapshots; --replay also rebuilds the database and compares',
  args: ['db'],
  options: {
    replay: { type: 'boolean', description: 'rebuild the database from the journal in a scratch file and compare every table' },
    'scratch-dir': { type: 'string', value: 'dir', description: 'where --replay builds its scratch copy (default: $TMPDIR); removed afterwards, also on Ctrl-C' },
    signed: { type: 'string', value: 'note', description: 'also prove the journal contains the head signed in <note> (changetrail sign) and extends it' },
    key: { type: 'string', value: 'file', description: 'with --signed: the public key (PEM or C2SP verifier key) whose signature must be valid' },
  },
  description: [
    'Checks every frame checksum, the sequence, the hash chain up to the head the database committed,',
    'and the genesis and resync snapshots: an altered, truncated or reordered journal is refused with the',
    'code of what is wrong. --replay also rebuilds the database from the journal and compares every table,',
    'which finds changes made outside changetrail. Journal SQL is replayed under a guard that cannot touch',
    'anything but the scratch copy. verify only reads: the database and the journal are never changed.',
  ].join('\n'),
  examples: ['changetrail verify app.db', 'changetrail verify app.db --replay --scratch-dir /var/tmp'],
  async run({ args, options, out }) {
    const trail = await openTrailReader(trackedDatabase('verify', args[0]!));
    const controller = new AbortController();
    const onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES) => () => controller.abort(signal);
    const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
    for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
    try {
      const report = await trail.verify({ replay: options.replay ?? false, signal: controller.signal, ...(options['scratch-dir'] === undefined ? {} : { scratchDir: options['scratch-dir'] }) });
      const signed = options.signed === undefined ? null : checkSigned(args[0]!, options.signed, options.key);
      out.emit(signed === null ? report : { ...report, signed }, () => `ok: ${plural(report.entries, 'entry', 'entries')} verified up to entry ${report.headSeq} ${shortHash(report.headHash)}${report.replayed ? '; the replayed journal equals the database' : ''}` +
        (signed === null ? '' : `\nok: the journal contains the signed head, entry ${signed.seq} ${shortHash(signed.hash)}, and extends it by ${plural(report.headSeq - signed.seq, 'entry', 'entries')}; ${signed.signedBy === null ? 'signature NOT checked (no --key)' : `signature by ${escapeControl(signed.signedBy)} verified`}`));
      return 0;
    } catch (error) {
      // Stopped by a signal: the scratch directory is already removed; exit as the signal would.
      if (controller.signal.aborted && !(error instanceof ChangetrailError)) return SIGNAL_EXIT_CODES[controller.signal.reason as keyof typeof SIGNAL_EXIT_CODES];
      throw error;
    } finally {
      for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler);
      trail.close();
    }
  },
});

/** `--signed <note> [--key <file>]`: the signed head is in this journal, and the journal extends it. */
function checkSigned(db: string, notePath: string, keyPath: string | undefined): { seq: number; hash: string; signedBy: string | null } {
  let note: string;
  try {
    note = readFileSync(notePath === '-' ? 0 : notePath, 'utf8');
  } catch (error) {
    throw usage('verify', `cannot read the signed note ${notePath}: ${(error as Error).message}`);
  }
  const report = verifySignedHead(db, note, keyPath === undefined ? undefined : readVerifierKey(keyPath));
  return { seq: report.signed.seq, hash: report.signed.hash, signedBy: report.signedBy };
}
