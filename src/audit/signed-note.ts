/**
 * Signed heads: the committed head as a C2SP tlog checkpoint (https://c2sp.org/tlog-checkpoint) in a
 * C2SP signed note (https://c2sp.org/signed-note), signed with Ed25519 (RFC 8032, node:crypto):
 *
 *     <origin: the journal id, 32 hex digits>
 *     <size: the head's seq, decimal>
 *     <root: base64 of the head's entry hash (at seq 0, the chain root)>
 *
 *     — <key name> base64(key id (4 bytes) || signature (64 bytes))
 *
 * key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[0..4]. The signature covers the text
 * above the blank line, final newline included. Keys are PEM files: PKCS#8 private keys as made by
 * `openssl genpkey -algorithm ed25519 -out key.pem` (or `changetrail sign --generate-key key.pem`), SPKI
 * public keys (`openssl pkey -in key.pem -pubout -out key.pub`) or a C2SP verifier key string
 * `<name>+<key id hex>+<base64(0x01 || public key)>`.
 *
 * The root is the entry hash, not an RFC 6962 Merkle root: changetrail's journal is a hash chain, so
 * "this journal extends that checkpoint" is proven by reading the entries between (O(entries)).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, fromHex, toHex } from '../journal/bytes.js';
import type { Position } from '../journal/position.js';

const ED25519_TYPE = 0x01;
const KEY_ID_SIZE = 4;
const SIGNATURE_SIZE = 64;
const PUBLIC_KEY_SIZE = 32;
/** C2SP signed-note: the em dash that starts every signature line. */
const SIGNATURE_PREFIX = '\u2014 ';
/** Verifiers must accept at least 16 signatures; more than this is refused as malformed. */
const SIGNATURES_MAX = 100;
const NOTE_SIZE_MAX = 1 << 20;
const KEY_NAME = /^[^\s+]+$/;
/** The DER prefix of an Ed25519 SPKI public key (RFC 8410): the raw 32-byte key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The head a note signs. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly signature: Uint8Array;
}

export interface ParsedNote {
  /** The signed text (through its final newline). */
  readonly text: string;
  readonly checkpoint: Checkpoint;
  readonly signatures: readonly NoteSignature[];
}

/** A signer: its key name and Ed25519 private key. */
export interface SigningKey {
  readonly name: string;
  readonly privateKey: KeyObject;
}

/** A verifier: its Ed25519 public key, and its key name (null: any name whose key id matches). */
export interface VerifierKey {
  readonly name: string | null;
  readonly publicKey: KeyObject;
}

/** The checkpoint text of a head. */
export function formatCheckpoint(head: Position): string {
  return `${head.journalId}\n${head.seq}\n${Buffer.from(fromHex(head.hash)).toString('base64')}\n`;
}

/** The signed note of `head`. */
export function signHead(head: Position, key: SigningKey): string {
  checkKeyName(key.name);
  const text = formatCheckpoint(head);
  const signature = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  const keyId = keyIdOf(key.name, rawPublicKey(createPublicKey(key.privateKey)));
  return `${text}\n${SIGNATURE_PREFIX}${key.name} ${Buffer.concat([keyId, signature]).toString('base64')}\n`;
}

/**
 * Parses a signed note holding a checkpoint.
 *
 * @throws ChangetrailError SIGNED_NOTE_MALFORMED.
 */
export function parseSignedNote(note: string): ParsedNote {
  if (note.length > NOTE_SIZE_MAX) throw malformed('the note is larger than 1 MiB');
  const split = note.indexOf('\n\n');
  if (split < 0) throw malformed('no blank line between the text and the signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw malformed('no signature lines');
  if (lines.length > SIGNATURES_MAX) throw malformed(`more than ${SIGNATURES_MAX} signatures`);
  return { text, checkpoint: parseCheckpoint(text), signatures: lines.map(parseSignatureLine) };
}

/**
 * Checks that `note` carries a valid signature by `key` (other keys' signatures are ignored, as C2SP asks).
 *
 * @throws ChangetrailError SIGNATURE_INVALID.
 */
export function checkNoteSignature(note: ParsedNote, key: VerifierKey): string {
  const raw = rawPublicKey(key.publicKey);
  const signed = note.signatures.find((s) => (key.name === null || s.name === key.name) && bytesEqual(s.keyId, keyIdOf(s.name, raw))
    && verify(null, Buffer.from(note.text, 'utf8'), key.publicKey, s.signature));
  if (signed === undefined) {
    const name = key.name ?? note.signatures[0]?.name ?? '';
    const keyId = toHex(keyIdOf(name, raw));
    throw new ChangetrailError('SIGNATURE_INVALID', `verify signed head: no valid signature by key ${name} (${keyId})`, { keyName: name, keyId });
  }
  return signed.name;
}

/** key id = SHA-256(name || "\n" || 0x01 || public key)[0..4] */
export function keyIdOf(name: string, publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(name, 'utf8').update('\n').update(Uint8Array.of(ED25519_TYPE)).update(publicKey).digest().subarray(0, KEY_ID_SIZE));
}

/** The C2SP verifier key string: `<name>+<key id hex>+<base64(0x01 || public key)>`. */
export function formatVerifierKey(key: { name: string; publicKey: KeyObject }): string {
  const raw = rawPublicKey(key.publicKey);
  return `${key.name}+${toHex(keyIdOf(key.name, raw))}+${Buffer.concat([Uint8Array.of(ED25519_TYPE), raw]).toString('base64')}`;
}

/** A new Ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Reads a PKCS#8 PEM Ed25519 private key. @throws ChangetrailError SIGNING_KEY_INVALID. */
export function readSigningKey(path: string, name: string): SigningKey {
  checkKeyName(name);
  const privateKey = withKeyFile(path, (text) => createPrivateKey(text));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw keyInvalid(path, `an ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return { name, privateKey };
}

/**
 * Reads a verifier key: a C2SP verifier key string (which names the key), or a PEM public (or private)
 * key, which matches a signature line of any name whose key id it gives. @throws ChangetrailError SIGNING_KEY_INVALID.
 */
export function readVerifierKey(path: string): VerifierKey {
  return withKeyFile(path, (text) => {
    const trimmed = text.trim();
    if (!trimmed.startsWith('-----')) return parseVerifierKeyString(path, trimmed);
    const name = null;
    const publicKey = createPublicKey(trimmed);
    if (publicKey.asymmetricKeyType !== 'ed25519') throw keyInvalid(path, `an ${publicKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
    return { name, publicKey };
  });
}

function parseVerifierKeyString(path: string, text: string): VerifierKey {
  // Split at the first two '+' only: the base64 key itself may contain '+' (about half of all keys do).
  const idStart = text.indexOf('+') + 1;
  const keyStart = idStart === 0 ? 0 : text.indexOf('+', idStart) + 1;
  const parts = keyStart === 0 ? [] : [text.slice(0, idStart - 1), text.slice(idStart, keyStart - 1), text.slice(keyStart)];
  if (parts.length !== 3 || !KEY_NAME.test(parts[0]!)) throw keyInvalid(path, 'not a PEM key nor a <name>+<id>+<key> verifier key');
  const bytes = Buffer.from(parts[2]!, 'base64');
  if (bytes.toString('base64') !== parts[2]) throw keyInvalid(path, 'the verifier key is not canonical base64');
  if (bytes.byteLength !== 1 + PUBLIC_KEY_SIZE || bytes[0] !== ED25519_TYPE) throw keyInvalid(path, 'the verifier key is not an Ed25519 key');
  const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, bytes.subarray(1)]), format: 'der', type: 'spki' });
  if (toHex(keyIdOf(parts[0]!, bytes.subarray(1))) !== parts[1]!.toLowerCase()) throw keyInvalid(path, 'the verifier key id does not match its key');
  return { name: parts[0]!, publicKey };
}

function withKeyFile<T>(path: string, fn: (text: string) => T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw keyInvalid(path, (error as Error).message);
  }
  try {
    return fn(text);
  } catch (error) {
    if (error instanceof ChangetrailError) throw error;
    throw keyInvalid(path, (error as Error).message);
  }
}

function rawPublicKey(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return new Uint8Array(der.subarray(der.byteLength - PUBLIC_KEY_SIZE));
}

function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  lines.pop();
  if (lines.length < 3) throw malformed('a checkpoint has an origin, a size and a root line');
  const [origin, size, root] = lines as [string, string, string];
  if (origin.length === 0) throw malformed('empty origin line');
  if (!/^(0|[1-9]\d{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw malformed(`size line is not a decimal number: ${size}`);
  const rootHash = Buffer.from(root, 'base64');
  if (rootHash.byteLength !== 32 || rootHash.toString('base64') !== root) throw malformed('root line is not a base64 32-byte hash');
  return { origin, size: Number(size), rootHash: new Uint8Array(rootHash) };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed('a signature line starts with "— "');
  const [name, encoded, extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
  if (name === undefined || encoded === undefined || extra !== undefined || !KEY_NAME.test(name)) throw malformed('a signature line is "— <name> <base64>"');
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.byteLength !== KEY_ID_SIZE + SIGNATURE_SIZE) throw malformed(`the signature of ${name} is not a key id and an Ed25519 signature`);
  return { name, keyId: new Uint8Array(bytes.subarray(0, KEY_ID_SIZE)), signature: new Uint8Array(bytes.subarray(KEY_ID_SIZE)) };
}

function checkKeyName(name: string): void {
  if (!KEY_NAME.test(name)) throw new RangeError(`signed note: a key name has no spaces or '+' (got ${JSON.stringify(name)})`);
}

function malformed(reason: string): ChangetrailError<'SIGNED_NOTE_MALFORMED'> {
  return new ChangetrailError('SIGNED_NOTE_MALFORMED', `parse signed note: ${reason}`, { reason });
}

function keyInvalid(path: string, reason: string): ChangetrailError<'SIGNING_KEY_INVALID'> {
  return new ChangetrailError('SIGNING_KEY_INVALID', `read key ${path}: ${reason}`, { path, reason });
}
