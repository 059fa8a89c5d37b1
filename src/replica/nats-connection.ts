/**
 * Connecting to NATS for shipping and remote replicas: the connection options users expect (several
 * servers, user/password, token, TLS, a credentials file, `NATS_URL`; parsed in nats-address.ts),
 * reconnection with exponential backoff, the names derived from `<name>` (the stream, its subject, the
 * Object Store bucket), and the deadline every await on NATS has. Everything NATS-specific that both sides
 * share lives here and in nats-message.ts.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { ChangetrailError } from '../errors.js';
import { describeNats, resolveServers, type NatsEvent, type NatsOptions } from './nats-address.js';

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

const RECONNECT_DELAY_MS = 250;
/** Reconnect backoff stops doubling here: a restarted server is found within ~5 s of coming back. */
export const RECONNECT_DELAY_MS_MAX = 5_000;
const TIMEOUT_MS = 5_000;

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
