/**
 * Real processes for the NATS tests: the built CLI (`changetrail ship|replicate --follow`), the replica
 * workload's writer processes, a loopback TCP proxy that cuts and restores connections, and polling of a
 * replica file's applied position.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { MAIN } from '../cli/run-cli.js';
import { freePort, type NatsServer } from './nats-server.js';

export const WORKLOAD_WRITER = new URL('../replica/fixtures/workload-writer.mjs', import.meta.url).pathname;

export interface CliProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Processes still running when a test ends (it failed): SIGKILLed by {@link killAll}. */
const running = new Set<ChildProcess>();

export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Starts the built CLI with `args`; stdout and stderr are collected. */
export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout!.on('data', (data) => (output += data));
  child.stderr!.on('data', (data) => (output += data));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolveExit({ code, signal });
    });
  });
  return { child, output: () => output, exited };
}

/** Runs one workload writer process (test/replica/fixtures/workload-writer.mjs) to completion. */
export function runWriter(path: string, index: number, transactions: number, seed: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [WORKLOAD_WRITER, path, String(index), String(transactions), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      running.delete(child);
      resolveRun({ code, output });
    });
  });
}

/** The seq a replica file has applied, or -1 while it does not exist yet. */
export function appliedSeq(replica: string): number {
  try {
    const db = new DatabaseSync(replica, { readOnly: true, timeout: 1_000 });
    try {
      return Number(db.prepare('SELECT seq FROM _changetrail_replica').get()?.seq ?? -1);
    } finally {
      db.close();
    }
  } catch {
    return -1;
  }
}

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string | Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${await what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * What a failed wait shows: the stream's state (or why it cannot be read), every process's output, and
 * whether each server runs, with the end of its log.
 */
export async function diagnosis(servers: string | string[], name: string, processes: Record<string, CliProcess>, nodes: readonly NatsServer[] = []): Promise<string> {
  const stream = await streamState(servers, name).then((state) => JSON.stringify(state), (error: unknown) => `unreadable (${(error as Error).message})`);
  const outputs = Object.entries(processes).map(([label, p]) => `--- ${label} (${p.child.exitCode === null && p.child.signalCode === null ? 'running' : `exited ${p.child.exitCode ?? p.child.signalCode}`}):\n${p.output()}`);
  const logs = nodes.map((node) => `--- nats-server :${node.port} (${node.running() ? 'running' : 'not running'}), log tail:\n${node.log().split('\n').slice(-12).join('\n')}`);
  return [`stream ${name}: ${stream}`, ...outputs, ...logs].join('\n');
}

/** The stream's message count and range (message n must be entry n: no duplicate, no gap). */
export async function streamState(servers: string | string[], name: string): Promise<{ messages: number; first_seq: number; last_seq: number }> {
  // Right after a node of a cluster is killed, JetStream API requests can time out while a new meta
  // leader is elected (a clean-clone CI saw it at the final check): asked again, for up to 20 s.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const nc = await connect({ servers });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(name);
      return { messages: info.state.messages, first_seq: info.state.first_seq, last_seq: info.state.last_seq };
    } catch (error) {
      if ((error as Error).name !== 'TimeoutError' || Date.now() > deadline) throw error;
    } finally {
      await nc.close();
    }
  }
}

/** True once the shipper has uploaded the journal's manifest to the stream's bucket. */
export async function manifestShipped(servers: string | string[], name: string): Promise<boolean> {
  try {
    const nc = await connect({ servers });
    try {
      return (await new Objm(nc).open(`${name}-files`).then((bucket) => bucket.info('manifest'))) !== null;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/**
 * A loopback TCP proxy in front of a server: `cut()` drops every connection and refuses new ones until
 * `restore()`; `freezeWhenServerSends(pattern)` stops forwarding, both ways and on every connection, right
 * before the first server bytes matching `pattern` (a server or link gone silent with its TCP connections
 * up: nothing fails, nothing arrives) until `thaw()`, which delivers what was held, in order.
 */
export interface TcpProxy {
  readonly url: string;
  cut(): void;
  restore(): void;
  freezeWhenServerSends(pattern: RegExp): void;
  /** Whether a freeze is in effect (its pattern was seen and `thaw()` not called yet). */
  frozen(): boolean;
  thaw(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let open = true;
  let trigger: RegExp | null = null;
  let frozen = false;
  let held: (() => void)[] = [];
  const forward = (to: Socket, chunk: Buffer): void => {
    if (frozen) held.push(() => to.write(chunk));
    else to.write(chunk);
  };
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => forward(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (trigger !== null && trigger.test(chunk.toString('latin1'))) {
        if (process.env.CT_PROXY_TRACE === '1') console.log(`freeze at: ${chunk.toString('latin1').slice(0, 400)}`);
        trigger = null;
        frozen = true;
      }
      forward(client, chunk);
    });
  });
  await new Promise<void>((resolveListen) => server.listen(port, '127.0.0.1', () => resolveListen()));
  return {
    url: `nats://127.0.0.1:${port}`,
    cut: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore: () => {
      open = true;
    },
    freezeWhenServerSends: (pattern) => {
      trigger = pattern;
    },
    frozen: () => frozen,
    thaw: () => {
      frozen = false;
      trigger = null;
      const release = held;
      held = [];
      for (const write of release) write();
    },
    close: () => new Promise<void>((resolveClose) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolveClose());
    }),
  };
}
