// Enforces the one-way data flow of src/:
//   changeset <- journal <- apply <- {admission, write, replica, export, audit} <- cli
// A value import (static `import`/`export ... from`, or a dynamic `import()`) may only point to the same
// stage or an earlier one; `import type` is free. Stages of the same rank are independent siblings, with one
// exception: `write` may import `admission` (the write path takes the admission lock). Every folder under
// src/ must be a known stage. Also: relative imports end in `.js` (NodeNext ESM), and src/changeset imports
// nothing from node:*.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

// An optional argument names another tree to check (the checker's own test uses it).
const SRC = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));
const RANK = { changeset: 0, journal: 1, apply: 2, admission: 3, write: 3, replica: 3, export: 3, audit: 3, cli: 4 };
/** Sibling imports allowed despite equal rank: importer -> imported. */
const SIBLING_ALLOWED = new Set(['write->admission']);
const ROOT_FILES_RANK = 0; // src/errors.ts, src/assert.ts are shared leaves; src/index.ts is the facade.

const problems = [];

function stageOf(file) {
  const rel = relative(SRC, file).split(sep);
  if (rel[0] === '..') return { name: 'outside', rank: 99 };
  if (rel.length === 1) return rel[0] === 'index.ts' ? { name: 'index', rank: 99 } : { name: 'root', rank: ROOT_FILES_RANK };
  return { name: rel[0], rank: RANK[rel[0]] ?? 99 };
}

for (const name of readdirSync(SRC)) {
  if (statSync(join(SRC, name)).isDirectory() && !(name in RANK)) {
    problems.push(`src/${name}/: unknown folder; add it to RANK in scripts/check-imports.mjs with its place in the import direction`);
  }
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (name.endsWith('.ts')) yield path;
  }
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm;
const SIDE_EFFECT_IMPORT = /^\s*import\s+['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*([^)]*?)\s*\)/g;

function checkEdge(file, from, spec, typeOnly) {
  const where = relative(SRC, file);
  if (spec.startsWith('node:') && from.name === 'changeset') problems.push(`${where}: src/changeset must not import ${spec}`);
  if (!spec.startsWith('.')) return;
  if (!spec.endsWith('.js')) problems.push(`${where}: relative import without .js: ${spec}`);
  if (typeOnly) return;
  const to = stageOf(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  if (to.name === 'outside') problems.push(`${where}: imports outside src/ (${spec})`);
  if (from.name === 'index') return;
  if (to.rank > from.rank) problems.push(`${where}: ${from.name} must not import from ${to.name} (${spec})`);
  if (from.rank === to.rank && from.name !== to.name && from.rank !== 0 && !SIBLING_ALLOWED.has(`${from.name}->${to.name}`)) {
    problems.push(`${where}: ${from.name} and ${to.name} are siblings and must not import each other (${spec})`);
  }
}

for (const file of walk(SRC)) {
  const source = readFileSync(file, 'utf8');
  const from = stageOf(file);
  if (from.rank === 99 && from.name !== 'index') continue; // reported above as an unknown folder
  for (const [, , typeOnly, spec] of source.matchAll(IMPORT)) checkEdge(file, from, spec, typeOnly !== undefined);
  for (const [, spec] of source.matchAll(SIDE_EFFECT_IMPORT)) checkEdge(file, from, spec, false);
  for (const [, argument] of source.matchAll(DYNAMIC_IMPORT)) {
    const literal = /^(['"`])([^'"`$]*)\1$/.exec(argument);
    if (literal === null) {
      problems.push(`${relative(SRC, file)}: dynamic import() of a computed specifier (${argument}); use a string literal so its direction can be checked`);
      continue;
    }
    checkEdge(file, from, literal[2], false);
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
