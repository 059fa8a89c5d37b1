// Enforces the one-way data flow of src/: changeset <- journal <- apply <- {write, replica} <- cli.
// A value import may only point to the same stage or an earlier one; `import type` is free.
// Also: relative imports end in `.js` (NodeNext ESM), and src/changeset imports nothing from node:*.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

const SRC = resolve(import.meta.dirname, '..', 'src');
const RANK = { changeset: 0, journal: 1, apply: 2, write: 3, replica: 3, cli: 4 };
const ROOT_FILES_RANK = 0; // src/errors.ts, src/assert.ts are shared leaves; src/index.ts is the facade.

function stageOf(file) {
  const rel = relative(SRC, file).split(sep);
  if (rel.length === 1) return rel[0] === 'index.ts' ? { name: 'index', rank: 99 } : { name: 'root', rank: ROOT_FILES_RANK };
  return { name: rel[0], rank: RANK[rel[0]] ?? 99 };
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (name.endsWith('.ts')) yield path;
  }
}

const problems = [];
const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm;
for (const file of walk(SRC)) {
  const source = readFileSync(file, 'utf8');
  const from = stageOf(file);
  for (const match of source.matchAll(IMPORT)) {
    const [, , typeOnly, spec] = match;
    if (spec.startsWith('node:') && from.name === 'changeset') problems.push(`${relative(SRC, file)}: src/changeset must not import ${spec}`);
    if (!spec.startsWith('.')) continue;
    if (!spec.endsWith('.js')) problems.push(`${relative(SRC, file)}: relative import without .js: ${spec}`);
    if (typeOnly) continue;
    const to = stageOf(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    if (to.rank > from.rank && from.name !== 'index') problems.push(`${relative(SRC, file)}: ${from.name} must not import from ${to.name} (${spec})`);
    if (from.rank === to.rank && from.name !== to.name && from.rank !== 0) problems.push(`${relative(SRC, file)}: ${from.name} and ${to.name} are siblings and must not import each other (${spec})`);
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
