#!/usr/bin/env node
/**
 * The `changetrail` executable (package.json `bin`). It always runs: npm links it as
 * node_modules/.bin/changetrail (a symlink), so it cannot guess from argv[1] whether it is the entry point.
 * The Node version is checked before anything imports node:sqlite, which older versions lack. The
 * library entry (`main(argv)`) is in run.ts.
 */
export {};

/** node:sqlite sessions and the authorizer arrived in Node 24.12 (package.json `engines`). */
const NODE_MIN: readonly [number, number] = [24, 12];
/** sysexits.h EX_CONFIG-like: the runtime cannot run changetrail at all. */
const EXIT_UNSUPPORTED_NODE = 78;

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < NODE_MIN[0] || (major === NODE_MIN[0] && minor < NODE_MIN[1])) {
  const message = `changetrail needs Node ${NODE_MIN.join('.')} or newer (for node:sqlite sessions); this is Node ${process.version}`;
  if (process.argv.includes('--json')) {
    process.stderr.write(`${JSON.stringify({ error: { code: 'NODE_UNSUPPORTED', message, details: { nodeVersion: process.version, required: `>=${NODE_MIN.join('.')}` } } })}\n`);
  } else {
    process.stderr.write(`changetrail: NODE_UNSUPPORTED: ${message}\nhint: install Node 24 LTS (https://nodejs.org), or run it with npx -p node@24 changetrail ...\n`);
  }
  process.exitCode = EXIT_UNSUPPORTED_NODE;
} else {
  const { main } = await import('./run.js');
  process.exitCode = await main(process.argv.slice(2));
}
