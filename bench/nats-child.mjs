// Child processes of bench/nats.bench.mjs (one measurement per process).
//   build <dir> <entries>                 primary with <entries> one-row entries: {path, journalBytes}
//   raw <url> <name> <count> <bytes> <inflight>  baseline: async JetStream publishes of <count> messages of <bytes>
//                                         with <inflight> acks outstanding, msg id + expected last sequence: {seconds}
//   ship <primary> <url> <name>           shipJournal of the whole backlog: {seconds, entries}
//   shipper <primary> <url> <name>        shipJournal --follow until SIGTERM (prints "ready")
//   follower <url> <name> <replica>       a natsSource replica following, "applied <seq> <wall ms>" per commit
//   writer <primary> <rate> <count>       writes at <rate>/s, "commit <seq> <before ms> <after ms>" per entry
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { natsSource, openReplica, shipJournal } from '../dist/index.js';
import { buildItemsPrimary, followUntilSigterm, writeItems } from './follow-lag.mjs';

const [mode, ...args] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

if (mode === 'build') {
  const [dir, entries] = args;
  const path = await buildItemsPrimary(dir, 'ct-nats-bench-', entries);
  const segments = readdirSync(`${path}.changes`).filter((name) => name.endsWith('.seg'));
  print({ path, journalBytes: segments.reduce((sum, name) => sum + statSync(join(`${path}.changes`, name)).size, 0) });
} else if (mode === 'raw') {
  const [url, name, count, bytes, inflight] = args.map((a, i) => (i >= 2 ? Number(a) : a));
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`raw.${name}`], storage: 'file', num_replicas: 1 });
  const js = jetstream(nc);
  const payload = new Uint8Array(bytes).fill(7);
  const pending = [];
  const t = performance.now();
  for (let seq = 1; seq <= count; seq++) {
    const h = headers();
    h.set('Changetrail-Seq', String(seq));
    pending.push(js.publish(`raw.${name}`, payload, { msgID: `m${seq}`, expect: { lastSequence: seq - 1 }, headers: h }));
    if (pending.length >= inflight) await pending.shift();
  }
  await Promise.all(pending);
  print({ seconds: (performance.now() - t) / 1000 });
  await nc.close();
} else if (mode === 'ship') {
  const [primary, url, name] = args;
  const t = performance.now();
  const shipper = await shipJournal(primary, { servers: url, name });
  const status = await shipper.done;
  print({ seconds: (performance.now() - t) / 1000, entries: status.shippedSeq });
  process.exit(0);
} else if (mode === 'shipper') {
  const [primary, url, name] = args;
  const shipper = await shipJournal(primary, { servers: url, name, follow: true });
  process.on('SIGTERM', () => void shipper.close());
  process.stdout.write('ready\n');
  await shipper.done;
  process.exit(0);
} else if (mode === 'follower') {
  const [url, name, replicaPath] = args;
  await followUntilSigterm(await openReplica(replicaPath, { source: natsSource({ servers: url, name }) }));
  process.exit(0); // the NATS client's timers would keep the process a while
} else if (mode === 'writer') {
  await writeItems(...args);
} else {
  throw new Error(`unknown mode ${mode}`);
}
