/**
 * The connection flags `ship` and `replicate` share for a `nats://host:4222/<name>` target: more servers,
 * user/password, token, a credentials file, TLS. Credentials may also be in the address
 * (`nats://user:pass@host/<name>`, `nats://token@host/<name>`); `NATS_URL` names the servers of an
 * address without hosts (`nats:///<name>`).
 */
import type { OptionSpecs } from './command.js';
import { ChangetrailError } from '../errors.js';
import { toJson, type Output } from './output.js';
import { escapeControl } from './format.js';
import { parseNatsAddress, type NatsEvent, type NatsOptions } from '../replica/nats-address.js';

export const NATS_OPTIONS = {
  server: { type: 'string', multiple: true, value: 'url', description: 'another server of the cluster (repeatable; the address names the first)' },
  user: { type: 'string', value: 'name', description: 'user name (or nats://user:pass@host/...)' },
  password: { type: 'string', value: 'secret', description: 'password for --user' },
  token: { type: 'string', value: 'token', description: 'authentication token' },
  creds: { type: 'string', value: 'file', description: 'NATS credentials file (JWT and NKey seed)' },
  tls: { type: 'boolean', description: 'require TLS (tls:// addresses imply it)' },
  'tls-ca': { type: 'string', value: 'file', description: 'CA certificate (PEM) to verify the server' },
  'tls-cert': { type: 'string', value: 'file', description: 'client certificate (PEM) for mutual TLS' },
  'tls-key': { type: 'string', value: 'file', description: 'client key (PEM) for mutual TLS' },
} as const satisfies OptionSpecs;

type NatsFlags = { server?: string[]; user?: string; password?: string; token?: string; creds?: string; tls?: boolean; 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string };

/** First and longest wait between attempts of {@link untilConnected}. */
const RETRY_MS = 250;
const RETRY_MS_MAX = 5_000;

/**
 * Runs `attempt` until it does not fail with NATS_UNAVAILABLE (a server not up yet, restarting, or
 * unreachable) or for want of the stream's manifest (nothing shipped yet), waiting 250 ms doubling to 5 s between attempts, until `signal` aborts (then the last
 * error stands). `--follow` commands start this way so that they outlive a server restart.
 */
export async function untilConnected<T>(attempt: () => Promise<T>, signal: AbortSignal, out: Output): Promise<T> {
  for (let delayMs = RETRY_MS; ; delayMs = Math.min(RETRY_MS_MAX, delayMs * 2)) {
    try {
      return await attempt();
    } catch (error) {
      // A follower started before its shipper finds no manifest yet: that, too, is waited for.
      const waitable = ChangetrailError.is(error, 'NATS_UNAVAILABLE') || (ChangetrailError.is(error, 'NATS_OBJECT_MISSING') && error.details.name === 'manifest');
      if (!waitable || signal.aborted) throw error;
      if (!out.json) out.notice(`waiting for NATS (${error.message}); retrying in ${delayMs} ms`);
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(resolveWait, delayMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolveWait();
        }, { once: true });
      });
      if (signal.aborted) throw error;
    }
  }
}

/** The library options for `address` and the flags. */
export function natsOptionsFrom(address: string, flags: NatsFlags, command: string): NatsOptions {
  const parsed = parseNatsAddress(address, command);
  const servers = [...parsed.servers, ...(flags.server ?? [])];
  const tlsFiles = {
    ...(flags['tls-ca'] === undefined ? {} : { caFile: flags['tls-ca'] }),
    ...(flags['tls-cert'] === undefined ? {} : { certFile: flags['tls-cert'] }),
    ...(flags['tls-key'] === undefined ? {} : { keyFile: flags['tls-key'] }),
  };
  const wantsTls = flags.tls === true || Object.keys(tlsFiles).length > 0 || address.toLowerCase().startsWith('tls:');
  const user = flags.user ?? parsed.user;
  const pass = flags.password ?? parsed.pass;
  const token = flags.token ?? parsed.token;
  return {
    name: parsed.name,
    ...(servers.length === 0 ? {} : { servers }),
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(token === undefined ? {} : { token }),
    ...(flags.creds === undefined ? {} : { credsFile: flags.creds }),
    ...(wantsTls ? { tls: Object.keys(tlsFiles).length > 0 ? tlsFiles : true } : {}),
  };
}

/**
 * What `ship|replicate --follow` print of a NATS shipper's or follower's events (NatsOptions.onEvent):
 * one line on stderr each, as NDJSON with --json. Without them a reconnect, a resume or a retry loop is
 * invisible until the lag shows.
 */
export function printNatsEvent(command: string, out: Output): (event: NatsEvent) => void {
  return (event) => {
    if (out.json) out.notice(toJson({ command, ...event }));
    else out.notice(`${command}: ${describeNatsEvent(event)}`);
  };
}

/** The human line of a {@link NatsEvent} (untrusted text escaped). */
export function describeNatsEvent(event: NatsEvent): string {
  switch (event.kind) {
    case 'disconnected':
      return `lost the connection to ${escapeControl(event.server)}; reconnecting`;
    case 'reconnected':
      return `reconnected to ${escapeControl(event.server)}`;
    case 'resumed':
      return event.seq === event.previousSeq
        ? `the stream holds entry ${event.seq}; shipping after it (${event.reason})`
        : `the stream holds entry ${event.seq} (this shipper had entry ${event.previousSeq}); shipping after it (${event.reason})`;
    case 'retry':
      return `${event.code}: ${escapeControl(event.reason)}; attempt ${event.attempt}${event.delayMs > 0 ? `, retrying in ${event.delayMs} ms` : ''}`;
    case 'consumer':
      return `reading the stream from entry ${event.seq} (${event.reason})`;
    case 'pruned':
      return `HISTORY_PRUNED: entry ${event.seq} was pruned before it was shipped; re-basing the stream on checkpoint ${event.checkpointSeq} (entries from ${event.earliestSeq} follow)`;
  }
}
