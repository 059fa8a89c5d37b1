/**
 * Connecting to NATS for shipping and remote replicas: the `nats://host:port[,host:port]/<name>` address,
 * the connection options users expect (several servers, user/password, token, TLS, a credentials file,
 * `NATS_URL`), reconnection with exponential backoff, and the names derived from `<name>` (the stream, its
 * subject, the Object Store bucket). Everything NATS-specific that both sides share lives here and in
 * nats-message.ts.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { ChangetrailError } from '../errors.js';

/** Where a journal lives in NATS, and how to reach it. */
export interface NatsOptions {
  /** Server URLs (`nats://host:4222`, `tls://…`). Default: `NATS_URL`, else `nats://127.0.0.1:4222`. */
  servers?: string | readonly string[];
  /** The stream name: `[A-Za-z0-9_-]`, at most 64 characters. Its Object Store bucket is `<name>-files`. */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /** A NATS credentials file (JWT + NKey seed), as `nats --creds`. */
  credsFile?: string;
  /** TLS: `true` to require it with the system CAs, or PEM files. */
  tls?: boolean | { caFile?: string; certFile?: string; keyFile?: string };
  /** First reconnect delay; doubles per failed attempt up to {@link RECONNECT_DELAY_MS_MAX}. Default 250 ms. */
  reconnectDelayMs?: number;
  /** How long a JetStream request (publish ack, stream read) may take. Default 5000 ms. */
  timeoutMs?: number;
  /** The client name servers show in their monitoring (`changetrail ship` / `changetrail replicate`). */
  clientName?: string;
  /**
   * Told of what changes while a shipper or a follower runs and is otherwise invisible: the connection
   * lost and found again, a resume from the stream's last entry, a retry after a transient failure, the
   * follower's consumer (re)created. `changetrail ship|replicate --follow` print these on stderr.
   */
  onEvent?: (event: NatsEvent) => void;
}

/** An event of {@link NatsOptions.onEvent}. */
export type NatsEvent =
  /** The connection to `server` was lost; the client reconnects by itself (backoff up to 5 s). */
  | { readonly kind: 'disconnected'; readonly server: string }
  | { readonly kind: 'reconnected'; readonly server: string }
  /** The shipper read the stream's last entry (`seq`), verified it against the journal, and ships after it. */
  | { readonly kind: 'resumed'; readonly seq: number; readonly previousSeq: number; readonly reason: string }
  /** A transient failure (`code`, e.g. NATS_UNAVAILABLE); the operation is tried again after `delayMs`. */
  | { readonly kind: 'retry'; readonly code: string; readonly reason: string; readonly attempt: number; readonly delayMs: number }
  /** The follower's ordered consumer starts at `seq` (`reason`: 'start', 'stalled', or what the client reported). */
  | { readonly kind: 'consumer'; readonly seq: number; readonly reason: string }
  /**
   * The shipper needs entry `seq`, which the journal pruned (it was past the hold limits): it re-bases the
   * stream on checkpoint `checkpointSeq` (pruned markers up to `earliestSeq - 1`, then entries again).
   */
  | { readonly kind: 'pruned'; readonly code: 'HISTORY_PRUNED'; readonly seq: number; readonly earliestSeq: number; readonly checkpointSeq: number; readonly reason: string };

/** A NATS address as the CLI takes it: `nats://[user:pass@]host:port[,host:port…]/<name>`. */
export interface NatsAddress {
  servers: string[];
  name: string;
  user?: string;
  pass?: string;
  token?: string;
}

export interface NatsHandles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly subject: string;
  readonly bucket: string;
  readonly timeoutMs: number;
  readonly description: string;
  openBucket(create: { replicas: number } | null): Promise<ObjectStore>;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const DEFAULT_SERVER = 'nats://127.0.0.1:4222';
const RECONNECT_DELAY_MS = 250;
/** Reconnect backoff stops doubling here: a restarted server is found within ~5 s of coming back. */
export const RECONNECT_DELAY_MS_MAX = 5_000;
const TIMEOUT_MS = 5_000;

/** True when `text` is a NATS address rather than a path. */
export function isNatsAddress(text: string): boolean {
  return /^(nats|tls):\/\//i.test(text);
}

/**
 * Parses `nats://[user:pass@|token@]host:port[,host:port…]/<name>`. An empty host list (`nats:///<name>`)
 * means `NATS_URL` (or the default server).
 *
 * @throws ChangetrailError CLI_USAGE for anything else.
 */
export function parseNatsAddress(text: string, command: string): NatsAddress {
  const match = /^(nats|tls):\/\/(?:([^@/]*)@)?([^/]*)\/([^/?#]+)$/i.exec(text);
  if (match === null || !NAME.test(match[4]!)) {
    throw new ChangetrailError('CLI_USAGE', `${command}: ${text} is not a NATS address`, {
      command, hint: 'use nats://host:4222/<name>, <name> made of letters, digits, - and _ (at most 64)',
    });
  }
  const scheme = match[1]!.toLowerCase();
  const servers = match[3]!.length === 0 ? [] : match[3]!.split(',').map((host) => `${scheme}://${host}`);
  const auth = match[2] === undefined ? {} : parseCredentials(decodeURIComponent(match[2]));
  return { servers, name: match[4]!, ...auth };
}

function parseCredentials(userinfo: string): { user?: string; pass?: string; token?: string } {
  const colon = userinfo.indexOf(':');
  if (colon < 0) return { token: userinfo };
  return { user: userinfo.slice(0, colon), pass: userinfo.slice(colon + 1) };
}

/** Checks options given to `shipJournal` / `natsSource` (API misuse is a TypeError). */
export function validateNatsOptions(options: NatsOptions, caller: string): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`${caller}: options are required`);
  if (typeof options.name !== 'string' || !NAME.test(options.name)) {
    throw new TypeError(`${caller}: name must be 1-64 letters, digits, - or _ (the stream name)`);
  }
  for (const key of ['reconnectDelayMs', 'timeoutMs'] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) throw new RangeError(`${caller}: ${key} must be a positive number`);
  }
}

/** The servers to use: the options', else NATS_URL (comma-separated), else the default. */
export function resolveServers(options: Pick<NatsOptions, 'servers'>): string[] {
  const given = typeof options.servers === 'string' ? [options.servers] : [...(options.servers ?? [])];
  if (given.length > 0) return given;
  const fromEnvironment = (process.env.NATS_URL ?? '').split(',').map((url) => url.trim()).filter((url) => url.length > 0);
  return fromEnvironment.length > 0 ? fromEnvironment : [DEFAULT_SERVER];
}

/** `nats://host:4222/<name>` for status and errors (never with credentials). */
export function describeNats(servers: readonly string[], name: string): string {
  const scheme = /^(\w+):\/\//.exec(servers[0] ?? '')?.[1] ?? 'nats';
  const hosts = servers.map((server) => server.replace(/^\w+:\/\//, '').replace(/^[^@/]*@/, '').replace(/\/.*$/, ''));
  return `${scheme}://${hosts.join(',')}/${name}`;
}

/**
 * Connects, with reconnection forever (exponential backoff from `reconnectDelayMs`, reset once connected).
 *
 * @throws ChangetrailError NATS_UNAVAILABLE when no server answers the first connection.
 */
export async function connectNats(options: NatsOptions): Promise<NatsHandles> {
  const servers = resolveServers(options);
  const description = describeNats(servers, options.name);
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const backoff = { attempt: 0 };
  let nc: NatsConnection;
  try {
    nc = await connect(connectionOptions(options, servers, timeoutMs, backoff));
  } catch (cause) {
    throw natsUnavailable(description, 'connect', cause);
  }
  // Once connected again, the next outage starts over at the first delay.
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') backoff.attempt = 0;
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        tellNatsEvent(options, { kind: status.type === 'disconnect' ? 'disconnected' : 'reconnected', server: status.server });
      }
    }
  })().catch(() => undefined);
  try {
    const js = jetstream(nc, { timeout: timeoutMs });
    const jsm = await natsAwait({ description, timeoutMs }, 'open JetStream', () => jetstreamManager(nc, { timeout: timeoutMs }));
    const bucket = `${options.name}-files`;
    const openBucket = async (create: { replicas: number } | null): Promise<ObjectStore> => {
      const opened = await settleWithin(create === null ? new Objm(js).open(bucket) : new Objm(js).create(bucket, { replicas: create.replicas, storage: 'file' as never }), timeoutMs);
      if (opened === TIMED_OUT) throw natsUnavailable(description, `open ${bucket}`, new Error(`no answer within ${timeoutMs} ms`));
      return opened;
    };
    return { nc, js, jsm, stream: options.name, subject: `changetrail.${options.name}.entries`, bucket, timeoutMs, description, openBucket };
  } catch (cause) {
    await nc.close().catch(() => undefined);
    throw natsUnavailable(description, 'open JetStream', cause);
  }
}

function connectionOptions(options: NatsOptions, servers: string[], timeoutMs: number, backoff: { attempt: number }): ConnectionOptions {
  const firstDelayMs = options.reconnectDelayMs ?? RECONNECT_DELAY_MS;
  const connection: ConnectionOptions = {
    servers, name: options.clientName ?? 'changetrail', timeout: timeoutMs,
    maxReconnectAttempts: -1, reconnectTimeWait: firstDelayMs, reconnectJitter: Math.round(firstDelayMs / 2),
    // Doubling per failed attempt, capped; reset once connected again (connectNats).
    reconnectDelayHandler: () => Math.min(RECONNECT_DELAY_MS_MAX, firstDelayMs * 2 ** Math.min(backoff.attempt++, 8)),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.pass === undefined ? {} : { pass: options.pass }),
    ...(options.token === undefined ? {} : { token: options.token }),
  };
  if (options.credsFile !== undefined) {
    const creds = readFileSync(options.credsFile);
    connection.authenticator = credsAuthenticator(new Uint8Array(creds));
  }
  if (options.tls !== undefined && options.tls !== false) connection.tls = options.tls === true ? {} : { ...options.tls };
  return connection;
}

/** Calls `options.onEvent` (a listener's failure never stops shipping or following). */
export function tellNatsEvent(options: Pick<NatsOptions, 'onEvent'>, event: NatsEvent): void {
  try {
    options.onEvent?.(event);
  } catch {
    // The listener's problem: events are informational.
  }
}

/** Runs a NATS call; a client error (timeout, disconnect) becomes NATS_UNAVAILABLE, changetrail's own errors pass. */
export async function natsCall<T>(description: string, operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (cause instanceof ChangetrailError || cause instanceof TypeError || cause instanceof RangeError) throw cause;
    throw natsUnavailable(description, operation, cause);
  }
}

/** What {@link settleWithin} returns for a promise that did not settle in time. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/** `promise`'s value, or {@link TIMED_OUT} when it has not settled within `ms` (what it does later is ignored). */
export async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<typeof TIMED_OUT>((resolveExpiry) => {
    timer = setTimeout(() => resolveExpiry(TIMED_OUT), Math.max(1, ms));
  });
  try {
    return await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One NATS operation with a deadline (`ms`, default the connection's request timeout). Every await on
 * NATS in the shipper and the source goes through this: a request has the client's timeout, but what
 * the client builds from several (consumer creation, Object Store reads and listings, a flush) waits
 * without one, and a cluster that lost its JetStream meta leader leaves such waits unanswered (a
 * follower was seen silent for 60 s after one of 3 nodes was SIGKILLed). A hang and a client error both
 * become NATS_UNAVAILABLE, which the follow loops retry with backoff and report as a retry event.
 */
export async function natsAwait<T>(nats: Pick<NatsHandles, 'description' | 'timeoutMs'>, operation: string, call: () => Promise<T>, ms = nats.timeoutMs): Promise<T> {
  const result = await natsCall(nats.description, operation, () => settleWithin(call(), ms));
  if (result === TIMED_OUT) throw natsUnavailable(nats.description, operation, new Error(`no answer within ${ms} ms`));
  return result;
}

/**
 * Reads object `name` of `bucket` (null when there is none), each chunk within the request timeout: an
 * object is read through a push consumer on the bucket's stream, whose messages nothing else bounds.
 * `sink` takes the chunks (default: collected and returned).
 */
export async function readObject(nats: NatsHandles, bucket: ObjectStore, name: string, sink?: (chunk: Uint8Array) => void | Promise<void>): Promise<Uint8Array | null> {
  const operation = `read ${nats.bucket}/${name}`;
  const result = await natsAwait(nats, operation, () => bucket.get(name));
  if (result === null) return null;
  const reader = result.data.getReader();
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const next = await natsAwait(nats, operation, () => reader.read());
      if (next.done) break;
      if (sink === undefined) chunks.push(next.value);
      else await sink(next.value);
    }
    const failure = await natsAwait(nats, operation, () => result.error);
    if (failure instanceof Error) throw natsUnavailable(nats.description, operation, failure);
  } catch (error) {
    void reader.cancel().catch(() => undefined);
    throw error;
  }
  return sink === undefined ? Buffer.concat(chunks) : new Uint8Array(0);
}

export function natsUnavailable(description: string, operation: string, cause: unknown): ChangetrailError<'NATS_UNAVAILABLE'> {
  const reason = (cause as Error | null)?.message ?? String(cause);
  return new ChangetrailError('NATS_UNAVAILABLE', `${operation} ${description}: ${reason}`, { server: description, operation, reason }, { cause });
}
