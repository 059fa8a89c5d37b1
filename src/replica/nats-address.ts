/**
 * NATS addresses and options without the NATS client: `nats://host:port[,host:port]/<name>` parsed and
 * described, the options checked, the servers resolved (`NATS_URL`). The CLI imports only this until an
 * address is a NATS one; the client modules (~40 ms to load) come with nats-connection.ts.
 */
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
  /** First reconnect delay; doubles per failed attempt up to 5 s. Default 250 ms. */
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

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const DEFAULT_SERVER = 'nats://127.0.0.1:4222';

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
