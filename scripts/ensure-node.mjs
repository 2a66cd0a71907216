// Every npm script runs on the Node installed by the `node` devDependency (node_modules/.bin/node
// comes first on PATH inside npm scripts). This guard fails loudly if that did not happen.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 17)) {
  console.error(
    `hostflow needs Node >= 22.17 but this script runs on ${process.version}.\n` +
      'Run `npm install` first: it installs Node 22 as a devDependency (package "node") and npm scripts use it.',
  );
  process.exit(1);
}
