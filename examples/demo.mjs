// npm start: a guided tour of what changetrail does today, on a throwaway database.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openTrail } from '../dist/index.js';
import { changesetToRows } from '../dist/changeset/index.js';

const dir = mkdtempSync(join(tmpdir(), 'changetrail-demo-'));
const path = join(dir, 'app.db');
const say = (text) => console.log(`\n\x1b[1m${text}\x1b[0m`);

say('1. An ordinary SQLite file with data in it, created without changetrail');
const plain = new DatabaseSync(path);
plain.exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL);
            INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'grace', 50);`);
plain.close();
console.log(path);

say('2. openTrail adopts it: tables untouched, a genesis snapshot and a journal beside it');
const trail = await openTrail(path);
console.log(`journal: ${trail.journalDir}`);

say('3. Every admitted write is one transaction, recorded as one numbered, hash-chained entry');
const transfer = await trail.write((db) => {
  db.prepare('UPDATE accounts SET balance = balance - 30 WHERE id = 1').run();
  db.prepare('UPDATE accounts SET balance = balance + 30 WHERE id = 2').run();
}, { actor: 'billing-agent', message: 'transfer 30 from ada to grace', meta: { ticket: 'INV-42' } });
console.log(transfer);
await trail.write((db) => db.exec(`INSERT INTO accounts VALUES (3, 'linus', 0)`), { message: 'open account' });

say('4. Audit: who changed what, when, why — row by row, with column names');
for await (const entry of trail.entries()) {
  console.log(`#${entry.seq} ${entry.time.toISOString()} ${entry.actor}: ${entry.message}`);
  const schema = { accounts: { columns: ['id', 'owner', 'balance'] } };
  for (const row of changesetToRows(entry.changeset, schema)) console.log('   ', row.op, JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
}

say('5. Undo: the inverse of entry 1, applied as a new entry (nothing is rewritten)');
const undo = await trail.undo(1, { actor: 'ops', message: 'undo the transfer' });
console.log(`entry #${undo.seq} undoes #${undo.undoes}:`, trail.read((db) => db.prepare('SELECT * FROM accounts ORDER BY id').all()));

say('6. Refused, never silently lost: DDL inside a write');
try {
  await trail.write((db) => db.exec('CREATE TABLE sneaky (x)'));
} catch (error) {
  console.log(`${error.code}: ${error.message}`);
}

say('7. Verify: the hash chain, the snapshots, and a replay of the journal against the database');
console.log(await trail.verify({ replay: true }));

say('8. Status');
console.log(await trail.status());
await trail.close();
console.log(`\nTry the CLI on it:  npx changetrail log ${path} --json`);
