import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/db.js';

const CHECKER = new URL('../scripts/check-imports.mjs', import.meta.url).pathname;

/** Runs the checker on a crafted src/ tree; returns its complaints ('' when the tree passes). */
function check(files: Record<string, string>): string {
  const root = join(tempDir('check-imports'), 'src');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  try {
    execFileSync(process.execPath, [CHECKER, root], { stdio: 'pipe' });
    return '';
  } catch (error) {
    return String((error as { stderr: Buffer }).stderr);
  }
}

describe('scripts/check-imports.mjs', () => {
  it('passes the real tree', () => {
    execFileSync(process.execPath, [CHECKER], { stdio: 'pipe' });
  });

  it('lets write import admission, and nothing else of rank 3 import a sibling', () => {
    expect(check({ 'admission/lock.ts': 'export const a = 1;\n', 'write/trail.ts': "import { a } from '../admission/lock.js';\n" })).toBe('');
    expect(check({ 'admission/lock.ts': 'export const a = 1;\n', 'replica/r.ts': "import { a } from '../admission/lock.js';\n" })).toMatch(/siblings/);
    expect(check({ 'write/w.ts': 'export const a = 1;\n', 'admission/lock.ts': "import { a } from '../write/w.js';\n" })).toMatch(/siblings/);
    expect(check({ 'write/w.ts': 'export const a = 1;\n', 'export/e.ts': "import type { A } from '../write/w.js';\n" })).toBe('');
  });

  it('rejects an import against the direction, static or dynamic', () => {
    expect(check({ 'write/w.ts': 'export const a = 1;\n', 'apply/a.ts': "import { a } from '../write/w.js';\n" })).toMatch(/apply must not import from write/);
    expect(check({ 'write/w.ts': 'export const a = 1;\n', 'journal/j.ts': "export async function f() { return import('../write/w.js'); }\n" })).toMatch(/journal must not import from write/);
    expect(check({ 'journal/j.ts': "export async function f(m: string) { return import(m); }\n" })).toMatch(/computed specifier/);
    expect(check({ 'cli/c.ts': "export async function f() { return import('../write/w.js'); }\n", 'write/w.ts': '' })).toBe('');
  });

  it('rejects an unknown folder under src/', () => {
    expect(check({ 'misc/m.ts': 'export const a = 1;\n' })).toMatch(/src\/misc\/: unknown folder/);
  });
});
