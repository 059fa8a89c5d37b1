import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSignedNote } from '../../src/audit/signed-note.js';
import { cli, cliDatabase } from './cli-helpers.js';
import { rewriteHistory } from './rewrite.js';
import { tempDir } from '../helpers/db.js';

function keys(): { key: string; pub: string; verifier: string } {
  const key = join(tempDir('ct-keys-'), 'audit.pem');
  const generated = cli('sign', '--generate-key', key, '--name', 'audit.example', '--json');
  expect(generated.code, generated.stderr).toBe(0);
  const verifierKey = JSON.parse(generated.stdout).verifierKey as string;
  const verifier = `${key}.vkey`;
  writeFileSync(verifier, `${verifierKey}\n`);
  return { key, pub: `${key}.pub`, verifier };
}

function signed(path: string, key: string): string {
  const result = cli('sign', path, '--key', key, '--name', 'audit.example');
  expect(result.code, result.stderr).toBe(0);
  const note = join(tempDir('ct-note-'), 'head.note');
  writeFileSync(note, result.stdout);
  return note;
}

describe('changetrail sign / verify --signed', async () => {
  it('ok: the note is a C2SP checkpoint of the head; it survives further writes', async () => {
    const path = await cliDatabase();
    const { key, pub, verifier } = keys();
    const note = signed(path, key);
    const parsed = parseSignedNote(readFileSync(note, 'utf8'));
    const status = JSON.parse(cli('status', path, '--json').stdout);
    expect(parsed.checkpoint).toMatchObject({ origin: status.journalId, size: status.headSeq });
    expect(Buffer.from(parsed.checkpoint.rootHash).toString('hex')).toBe(status.headHash);
    expect(parsed.signatures.map((s) => s.name)).toEqual(['audit.example']);

    expect(cli('exec', path, `INSERT INTO t VALUES (9, 'later', 9)`).code).toBe(0);
    for (const k of [pub, verifier]) {
      const verified = cli('verify', path, '--signed', note, '--key', k, '--json');
      expect(verified.code, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout).signed).toMatchObject({ seq: status.headSeq, hash: status.headHash, signedBy: 'audit.example' });
    }
    expect(cli('verify', path, '--signed', note).stdout).toContain('signature NOT checked');
  });

  it('err: a consistently rewritten history verifies as a chain but fails --signed (SIGNED_HEAD_MISMATCH)', async () => {
    const path = await cliDatabase();
    const { pub, key } = keys();
    const note = signed(path, key);
    expect(JSON.parse(cli('history', path, 't', '1', '--json').stdout.split('\n')[1]!).actor).toBe('carol'); // builds the index
    rewriteHistory(path, 3, (body) => ({ ...body, actor: 'mallory', message: 'nothing to see' }));
    const plain = cli('verify', path, '--json');
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(cli('history', path, 't', '1', '--json').stdout.split('\n')[1]!).actor).toBe('mallory');
    const result = cli('verify', path, '--signed', note, '--key', pub, '--json');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr).error).toMatchObject({ code: 'SIGNED_HEAD_MISMATCH', details: { seq: 4, reason: 'rewritten' } });
  });

  it('err: a forged note, another key, a note of another journal', async () => {
    const path = await cliDatabase();
    const { key, pub } = keys();
    const other = keys();
    const note = signed(path, key);
    const wrongKey = cli('verify', path, '--signed', note, '--key', other.pub, '--json');
    expect(JSON.parse(wrongKey.stderr).error.code).toBe('SIGNATURE_INVALID');
    const text = readFileSync(note, 'utf8') as string;
    const forged = join(tempDir('ct-note-'), 'forged.note');
    writeFileSync(forged, text.replace(/^(\w+)\n(\d+)\n/, (_m: string, origin: string, size: string) => `${origin}\n${Number(size) - 1}\n`));
    expect(JSON.parse(cli('verify', path, '--signed', forged, '--key', pub, '--json').stderr).error.code).toBe('SIGNATURE_INVALID');
    const otherDb = await cliDatabase();
    expect(JSON.parse(cli('verify', otherDb, '--signed', note, '--key', pub, '--json').stderr).error).toMatchObject({ code: 'SIGNED_HEAD_MISMATCH', details: { reason: 'other-journal' } });
    writeFileSync(forged, 'not a note');
    expect(JSON.parse(cli('verify', path, '--signed', forged, '--json').stderr).error.code).toBe('SIGNED_NOTE_MALFORMED');
  });
});
