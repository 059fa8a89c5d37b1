/**
 * Real nats-server processes for the NATS tests: free loopback ports, temporary store directories, a
 * SIGKILL and a restart on the same port and store, and 3-node JetStream clusters. A missing binary fails
 * the test, naming the Debian package (never a skip).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { tempDir } from '../helpers/db.js';

/** The server binary: NATS_SERVER, else Debian's path, else PATH. */
export function natsServerBinary(): string {
  const candidates = [process.env.NATS_SERVER, '/usr/sbin/nats-server', '/usr/bin/nats-server'].filter((path): path is string => typeof path === 'string' && path.length > 0);
  for (const path of candidates) if (existsSync(path)) return path;
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim().length > 0) return which.stdout.trim();
  throw new Error('nats-server not found (looked at $NATS_SERVER, /usr/sbin/nats-server, PATH): install the Debian package `nats-server` (apt-get install -y nats-server)');
}

/**
 * Ports below Linux's ephemeral range (ip_local_port_range starts at 32768): a port the kernel hands
 * out for `listen(0)` is also handed to outgoing connections, so while a test has its server stopped
 * (SIGKILL, restart a second later) any connection on the machine, the clients' own reconnects included
 * (a TCP self-connect), can take it and the restart fails with EADDRINUSE.
 */
const PORT_MIN = 20_000;
const PORT_MAX = 32_000;

/** A loopback port outside the ephemeral range that nothing listens on now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN));
    if (await bindable(port)) return port;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolveBindable) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveBindable(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveBindable(true)));
  });
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  /** SIGKILL (default) or SIGTERM; resolves when it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and store; rejects when it does not come up. */
  restart(): Promise<void>;
  /** Whether the server process runs now. */
  running(): boolean;
  /** Everything every run of it printed (an exit is noted). */
  readonly log: () => string;
}

interface ServerConfig {
  port: number;
  storeDir: string;
  configFile?: string;
}

/** Starts a single JetStream server on a free loopback port with a temporary store. */
export async function startNatsServer(options: { port?: number; storeDir?: string; extraConfig?: string } = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? tempDir('ct-nats-store-');
  let configFile: string | undefined;
  if (options.extraConfig !== undefined) {
    configFile = join(storeDir, 'server.conf');
    writeFileSync(configFile, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${storeDir}" }\n${options.extraConfig}\n`);
  }
  return launch({ port, storeDir, ...(configFile === undefined ? {} : { configFile }) });
}

async function launch(config: ServerConfig): Promise<NatsServer> {
  const binary = natsServerBinary();
  let child: ChildProcess | null = null;
  let log = '';
  const args = config.configFile !== undefined ? ['-c', config.configFile] : ['-a', '127.0.0.1', '-p', String(config.port), '-js', '-sd', config.storeDir];
  // Each start waits for its own process's "Server is ready" (the log keeps every run's lines: a restart
  // must not take the first run's line for its own), and a server that exits is never taken as running.
  const start = async (): Promise<void> => {
    child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const started = child;
    let own = '';
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server on ${config.port} did not start within 20 s:\n${own}`)), 20_000);
      started.stderr!.on('data', (data: Buffer) => {
        log += data.toString();
        own += data.toString();
        if (own.includes('Server is ready')) {
          clearTimeout(timer);
          resolveReady();
        }
      });
      started.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (child === started) log += `[nats-server exited: ${code ?? signal}]\n`;
        reject(new Error(`nats-server on ${config.port} exited with ${code ?? signal}:\n${own}`));
      });
    });
  };
  await start();
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const running = child;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolveExit) => running.once('exit', () => resolveExit()));
    running.kill(signal);
    await exited;
    child = null;
  };
  const running = (): boolean => child !== null && child.exitCode === null && child.signalCode === null;
  return { port: config.port, url: `nats://127.0.0.1:${config.port}`, storeDir: config.storeDir, stop, restart: start, running, log: () => log };
}

export interface NatsCluster {
  readonly nodes: NatsServer[];
  readonly urls: string[];
  /** The index of the node that is the JetStream meta leader now (from a running node's /jsz). */
  metaLeader(): Promise<number>;
  /** The index of the node that leads stream `name` now (its stream info). */
  streamLeader(name: string): Promise<number>;
  stop(): Promise<void>;
}

/** A 3-node JetStream cluster on loopback (routes between free ports), waiting until it has a leader. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const clientPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const monitorPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const root = tempDir('ct-nats-cluster-');
  const nodes: NatsServer[] = [];
  const starting = clientPorts.map((port, index) => {
    const storeDir = join(root, `n${index}`);
    mkdirSync(storeDir, { recursive: true });
    const configFile = join(storeDir, 'server.conf');
    writeFileSync(configFile, [
      `server_name: n${index}`, `listen: 127.0.0.1:${port}`, `http: 127.0.0.1:${monitorPorts[index]}`, `jetstream { store_dir: "${storeDir}" }`,
      `cluster { name: ct; listen: 127.0.0.1:${routePorts[index]}; routes: [${routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`,
    ].join('\n'));
    return launchUntilListening({ port, storeDir, configFile });
  });
  nodes.push(...(await Promise.all(starting)));
  await waitForJetStream(nodes.map((node) => node.url));
  const urls = nodes.map((node) => node.url);
  const indexOf = (serverName: string | undefined): number => {
    const index = /^n(\d+)$/.exec(serverName ?? '')?.[1];
    if (index === undefined) throw new Error(`no leader (${serverName ?? 'none'})`);
    return Number(index);
  };
  const metaLeader = async (): Promise<number> => {
    for (const [index, node] of nodes.entries()) {
      if (!node.running()) continue;
      const jsz = await (await fetch(`http://127.0.0.1:${monitorPorts[index]}/jsz`)).json() as { meta_cluster?: { leader?: string } };
      return indexOf(jsz.meta_cluster?.leader);
    }
    throw new Error('no node runs');
  };
  const streamLeader = async (name: string): Promise<number> => {
    const nc = await connect({ servers: nodes.filter((node) => node.running()).map((node) => node.url) });
    try {
      return indexOf((await (await jetstreamManager(nc)).streams.info(name)).cluster?.leader);
    } finally {
      await nc.close();
    }
  };
  return { nodes, urls, metaLeader, streamLeader, stop: async () => void (await Promise.all(nodes.map((node) => node.stop()))) };
}

function launchUntilListening(config: ServerConfig): Promise<NatsServer> {
  return launch(config);
}

/** Nodes print "Server is ready" before the cluster elects a JetStream meta leader; wait for one. */
async function waitForJetStream(servers: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const nc = await connect({ servers });
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the cluster elected no JetStream leader within 30 s: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
