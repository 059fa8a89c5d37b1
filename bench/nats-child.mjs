// Child processes of bench/nats.bench.mjs (one measurement per process).
//   build <dir> <entries>                 primary with <entries> one-row entries: {path, journalBytes}
//   raw <url> <name> <count> <bytes> <inflight>  baseline: async JetStream publishes of <count> messages of <bytes>
//                                         with <inflight> acks outstanding, msg id + expected last sequence: {seconds}
//   ship <primary> <url> <name>           shipJournal of the whole backlog: {seconds, entries}
//   shipper <primary> <url> <name>        shipJournal --follow until SIGTERM (prints "ready")
//   follower <url> <name> <replica>       a natsSource replica following, "applied <seq> <wall ms>" per commit
//   writer <primary> <rate> <count>       writes at <rate>/s, "commit <seq> <before ms> <after ms>" per entry
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { natsSource, openReplica, openTrail, shipJournal } from '../dist/index.js';
import { wallMs, writeAtRate } from './follow-lag.mjs';

const [mode, ...args] = process.argv.slice(2);
const SCHEMA = 'CREATE TABLE items(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, label TEXT NOT NULL)';
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

if (mode === 'build') {
  const [dir, entries] = args;
  const path = join(mkdtempSync(join(dir, 'ct-nats-bench-')), 'primary.db');
  const db = new DatabaseSync(path);
  db.exec(SCHEMA);
  db.close();
  const trail = await openTrail(path);
  for (let i = 0; i < Number(entries); i++) await trail.write((d) => d.prepare('INSERT INTO items(n, label) VALUES (?, ?)').run(i, `row-${i}`));
  await trail.close();
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
  const replica = await openReplica(replicaPath, { source: natsSource({ servers: url, name }) });
  await replica.sync();
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  replica.on('applied', (position) => process.stdout.write(`applied ${position.seq} ${wallMs()}\n`));
  process.stdout.write('ready\n');
  await replica.follow({ signal: controller.signal });
  await replica.close();
  process.exit(0); // the NATS client's timers would keep the process a while
} else if (mode === 'writer') {
  const [primary, rate, count] = args;
  const trail = await openTrail(primary, { lock: { idleReleaseMs: 60_000 } });
  await writeAtRate(rate, count, (i) => trail.write((d) => d.prepare('INSERT INTO items(n, label) VALUES (?, ?)').run(i, `row-${i}`)));
  await trail.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
