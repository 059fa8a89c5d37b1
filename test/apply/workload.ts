/**
 * A seeded workload over a schema with everything that makes exact replay hard: composite and TEXT keys,
 * a WITHOUT ROWID table whose PRIMARY KEY order differs from its column order, VIRTUAL and STORED generated
 * columns, an external-content FTS5 index maintained by triggers, an R*Tree, an audit table filled by
 * triggers, ON DELETE CASCADE chains (whose deletes fire triggers too), and migrations, some of them
 * non-deterministic.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { ReplayableEntry } from '../../src/apply/apply-entry.js';
import { captureTransaction, createRandom } from './helpers.js';

export const SCHEMA_SQL = `
CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
CREATE TABLE posts(
  id INTEGER PRIMARY KEY,
  author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
  title TEXT NOT NULL, body TEXT NOT NULL, score REAL,
  title_len AS (length(title)) VIRTUAL,
  title_upper AS (upper(title)) STORED);
CREATE TABLE tags(
  post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE, tag TEXT NOT NULL, weight,
  PRIMARY KEY(tag, post_id)) WITHOUT ROWID;
CREATE TABLE kv(k TEXT PRIMARY KEY NOT NULL, v);
CREATE TABLE audit(id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, row_key);
CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');
CREATE VIRTUAL TABLE geo USING rtree(id, minx, maxx, miny, maxy);
CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN
  INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
  INSERT INTO audit(tbl, op, row_key) VALUES ('posts', 'insert', new.id);
END;
CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
  INSERT INTO audit(tbl, op, row_key) VALUES ('posts', 'delete', old.id);
END;
CREATE TRIGGER posts_au AFTER UPDATE ON posts BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
  INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
  INSERT INTO audit(tbl, op, row_key) VALUES ('posts', 'update', new.id);
END;
CREATE TRIGGER authors_ad AFTER DELETE ON authors BEGIN
  INSERT INTO audit(tbl, op, row_key) VALUES ('authors', 'delete', old.id);
END;
CREATE TRIGGER tags_ai AFTER INSERT ON tags BEGIN
  INSERT INTO audit(tbl, op, row_key) VALUES ('tags', 'insert', new.tag || '/' || new.post_id);
END;
`;

/** Migrations run at fixed transaction indexes; M3 and M4 are non-deterministic, M5 cannot be recorded. */
export const MIGRATIONS: ReadonlyMap<number, string> = new Map([
  [8, `ALTER TABLE authors ADD COLUMN bio TEXT DEFAULT 'none'; UPDATE authors SET bio = 'bio-' || id WHERE id % 2 = 0;`],
  [16, `CREATE INDEX posts_score ON posts(score); ANALYZE;`],
  [24, `CREATE TABLE ratings(post_id INTEGER NOT NULL, user TEXT NOT NULL, stars INTEGER NOT NULL, PRIMARY KEY(post_id, user));
    CREATE TRIGGER ratings_ai AFTER INSERT ON ratings BEGIN
      INSERT INTO audit(tbl, op, row_key) VALUES ('ratings', 'insert', new.post_id || '/' || new.user);
    END;
    INSERT INTO ratings SELECT id, 'seed', abs(random()) % 5 + 1 FROM posts;`],
  [32, `INSERT INTO posts_fts(posts_fts) VALUES ('optimize'); UPDATE kv SET v = randomblob(8) WHERE k < 'k4';`],
  [40, `CREATE TABLE kv_new(k TEXT PRIMARY KEY NOT NULL, v, touched INTEGER NOT NULL DEFAULT 0);
    INSERT INTO kv_new(k, v) SELECT k, v FROM kv; DROP TABLE kv; ALTER TABLE kv_new RENAME TO kv;`],
]);

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];

/** FTS5 queries whose answers must agree between source and replica. */
export const FTS_QUERIES = [...WORDS, 'alpha AND beta', 'gam*', '"delta epsilon"', 'title:zeta', 'iota NOT eta', 'kappa OR theta'];

type Random = ReturnType<typeof createRandom>;

function words(random: Random, count: number): string {
  return Array.from({ length: count }, () => random.pick(WORDS)).join(' ');
}

function anyValue(random: Random): null | bigint | number | string | Uint8Array {
  switch (random.int(5)) {
    case 0: return null;
    case 1: return BigInt(random.int(2000) - 1000) * 7919n;
    case 2: return random.next() * 1000 - 500;
    case 3: return words(random, 1 + random.int(3));
    default: return Uint8Array.from({ length: random.int(6) }, () => random.int(256));
  }
}

function ids(db: DatabaseSync, sql: string): bigint[] {
  const statement = db.prepare(sql);
  statement.setReadBigInts(true);
  return statement.all().map((row) => Object.values(row)[0] as bigint);
}

/** One random statement of the workload on `db` (the source). */
export function randomOperation(db: DatabaseSync, random: Random, migrated: ReadonlySet<number>): void {
  const authors = ids(db, 'SELECT id FROM authors ORDER BY id');
  const posts = ids(db, 'SELECT id FROM posts ORDER BY id');
  const author = authors.length > 0 ? random.pick(authors) : null;
  const post = posts.length > 0 ? random.pick(posts) : null;
  switch (random.int(15)) {
    case 0:
    case 1:
      db.prepare('INSERT OR IGNORE INTO authors(id, name, email) VALUES (?, ?, ?)').run(
        random.chance(0.5) ? null : BigInt(1 + random.int(30)), words(random, 2), random.chance(0.3) ? null : `${random.pick(WORDS)}@x`);
      return;
    case 2:
      if (author !== null && migrated.has(8)) db.prepare('UPDATE authors SET bio = ? WHERE id = ?').run(words(random, 3), author);
      else if (author !== null) db.prepare('UPDATE authors SET name = ? WHERE id = ?').run(words(random, 2), author);
      return;
    case 3:
      if (author !== null && random.chance(0.5)) db.prepare('DELETE FROM authors WHERE id = ?').run(author);
      return;
    case 4:
    case 5:
    case 6:
      if (author !== null) {
        db.prepare('INSERT INTO posts(author_id, title, body, score) VALUES (?, ?, ?, ?)').run(
          author, words(random, 2), words(random, 3 + random.int(6)), random.chance(0.2) ? null : random.next() * 10);
      }
      return;
    case 7:
      if (post !== null) db.prepare('UPDATE posts SET body = ?, score = ? WHERE id = ?').run(words(random, 4), random.next(), post);
      return;
    case 8:
      if (post !== null) db.prepare('DELETE FROM posts WHERE id = ?').run(post);
      return;
    case 9:
      if (post !== null) {
        db.prepare('INSERT INTO tags(post_id, tag, weight) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET weight = excluded.weight')
          .run(post, random.pick(WORDS), anyValue(random));
      }
      return;
    case 10:
      db.prepare('DELETE FROM tags WHERE tag = ?').run(random.pick(WORDS));
      return;
    case 11:
      db.prepare('INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)').run(`k${random.int(12)}`, anyValue(random));
      return;
    case 12:
      db.prepare('DELETE FROM kv WHERE k = ?').run(`k${random.int(12)}`);
      return;
    case 13: {
      const x = random.next() * 100;
      const y = random.next() * 100;
      db.prepare('INSERT OR REPLACE INTO geo VALUES (?, ?, ?, ?, ?)').run(BigInt(1 + random.int(20)), x, x + random.next(), y, y + random.next());
      if (random.chance(0.3)) db.prepare('DELETE FROM geo WHERE id = ?').run(BigInt(1 + random.int(20)));
      return;
    }
    default:
      if (post !== null && migrated.has(24)) {
        db.prepare('INSERT OR REPLACE INTO ratings VALUES (?, ?, ?)').run(post, random.pick(WORDS), BigInt(1 + random.int(5)));
      }
  }
}

/**
 * Runs a migration on the source as changetrail's migrate does (foreign keys off, one transaction, one
 * session) and returns its journal entry.
 */
export function migrateSource(db: DatabaseSync, sql: string, seq: number): ReplayableEntry {
  db.exec('PRAGMA foreign_keys = OFF');
  db.exec('BEGIN IMMEDIATE');
  const session = db.createSession();
  try {
    db.exec(sql);
    let changeset: Uint8Array;
    try {
      changeset = session.changeset();
    } catch (error) {
      // A table with recorded changes was renamed or dropped: SQLITE_SCHEMA, reported as errcode 0.
      if ((error as { errcode?: number }).errcode !== 0) throw error;
      changeset = new Uint8Array(0);
    }
    db.exec('COMMIT');
    return { kind: 'schema', sql, changeset, seq };
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  } finally {
    session.close();
    db.exec('PRAGMA foreign_keys = ON');
  }
}

/**
 * Yields the journal entries of a seeded workload of `transactionCount` transactions on `db`, each
 * captured like the write path does (one session per transaction, changeset taken before COMMIT).
 */
export function* runWorkload(db: DatabaseSync, seed: number, transactionCount: number): Generator<ReplayableEntry> {
  const random = createRandom(seed);
  const migrated = new Set<number>();
  for (let index = 1; index <= transactionCount; index++) {
    const migration = MIGRATIONS.get(index);
    if (migration !== undefined) {
      migrated.add(index);
      yield migrateSource(db, migration, index);
      continue;
    }
    const operationCount = 1 + random.int(6);
    const changeset = captureTransaction(db, () => {
      for (let operation = 0; operation < operationCount; operation++) randomOperation(db, random, migrated);
    });
    yield { kind: 'write', changeset, seq: index };
  }
}
