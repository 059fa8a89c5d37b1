/** `changetrail sign <db> --key <file>`: the committed head as a C2SP signed note, to keep elsewhere. */
import { chmodSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { signCommittedHead } from '../../audit/signed-head.js';
import { formatVerifierKey, generateSigningKey, readSigningKey } from '../../audit/signed-note.js';
import { defineCommand, usage } from '../command.js';
import { trackedDatabase } from '../helpers.js';

/** The key name when --name is not given. */
const DEFAULT_KEY_NAME = 'changetrail';

export const sign = defineCommand({
  name: 'sign',
  summary: 'print a signed note of the committed head (C2SP tlog checkpoint, Ed25519); --generate-key makes a key',
  args: ['db?'],
  options: {
    key: { type: 'string', value: 'file', description: 'Ed25519 private key, PKCS#8 PEM (openssl genpkey -algorithm ed25519)' },
    name: { type: 'string', value: 'key name', description: `the key name in the signature line (default ${DEFAULT_KEY_NAME})` },
    'generate-key': { type: 'string', value: 'file', description: 'write a new private key to <file> (mode 0600) and its public key to <file>.pub' },
  },
  description: [
    'The note is three lines — the journal id (origin), the head\'s entry number (size) and its entry hash',
    '(base64) — a blank line, and `— <key name> <base64(key id || signature)>`. Store it anywhere else',
    '(a ticket, a transparency log, another machine); `changetrail verify <db> --signed <note> --key <pub>`',
    'later proves the journal still contains that head and extends it. Keys: `openssl genpkey -algorithm',
    'ed25519 -out key.pem` and `openssl pkey -in key.pem -pubout -out key.pub`, or --generate-key.',
  ].join('\n'),
  examples: ['changetrail sign --generate-key audit.pem', 'changetrail sign app.db --key audit.pem > head-2026-12-01.note'],
  async run({ args, options, out }) {
    const name = options.name ?? DEFAULT_KEY_NAME;
    if (options['generate-key'] !== undefined) {
      const path = options['generate-key'];
      const { privatePem, publicPem } = generateSigningKey();
      writeFileSync(path, privatePem, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      writeFileSync(`${path}.pub`, publicPem, { flag: 'wx' });
      const verifierKey = formatVerifierKey({ name, publicKey: createPublicKey(privatePem) });
      out.emit({ privateKey: path, publicKey: `${path}.pub`, verifierKey }, () => `wrote ${path} (private, 0600) and ${path}.pub\nverifier key: ${verifierKey}`);
      return 0;
    }
    if (args[0] === undefined) throw usage('sign', 'expected <db> --key <file> (or --generate-key <file>)');
    if (options.key === undefined) throw usage('sign', 'expected --key <file>: an Ed25519 private key (make one with --generate-key <file>)');
    const db = trackedDatabase('sign', args[0]);
    const key = readSigningKey(options.key, name);
    const { note, head } = signCommittedHead(db, key);
    if (out.json) out.record({ note, origin: head.journalId, seq: head.seq, hash: head.hash, keyName: name });
    else out.line(note.slice(0, -1));
    return 0;
  },
});
