// A C2SP verifier key is `<name>+<key id>+<base64 key>`, and base64 uses '+': splitting the whole string at
// every '+' rejected about half of all generated keys (SIGNING_KEY_INVALID), which made signed-head tests flaky.
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatVerifierKey, generateSigningKey, readVerifierKey } from '../../src/audit/signed-note.js';
import { tempDir } from '../helpers/db.js';

function verifierKeyWithPlus(): string {
  for (let i = 0; i < 500; i++) {
    const key = formatVerifierKey({ name: 'audit.example', publicKey: createPublicKey(generateSigningKey().publicPem) });
    if (key.split('+').length > 3) return key;
  }
  throw new Error('no key with a + in its base64 in 500 tries');
}

describe('readVerifierKey', () => {
  it('ok: a verifier key whose base64 contains "+" is read, named and matches its key id', () => {
    const text = verifierKeyWithPlus();
    const path = join(tempDir('ct-vkey-'), 'audit.vkey');
    writeFileSync(path, `${text}\n`);
    const key = readVerifierKey(path);
    expect(key.name).toBe('audit.example');
    expect(formatVerifierKey({ name: 'audit.example', publicKey: key.publicKey })).toBe(text);
  });

  it('err: a verifier key with non-canonical base64 is SIGNING_KEY_INVALID', () => {
    const text = `${verifierKeyWithPlus()}!!`;
    const path = join(tempDir('ct-vkey-'), 'bad.vkey');
    writeFileSync(path, text);
    expect(() => readVerifierKey(path)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_INVALID' }));
  });
});
