// Fails fast, with an explanation, when npm scripts run under a Node without node:sqlite sessions.
// `npm install` brings Node 24 (devDependency "node"), and npm puts node_modules/.bin first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 12)) {
  console.error(
    `changetrail needs Node >= 24.12 (node:sqlite sessions); this is ${process.version}.\n` +
      'Run `npm install` first: it installs Node 24 LTS as a devDependency for every npm script.',
  );
  process.exit(1);
}
