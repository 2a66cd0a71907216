#!/usr/bin/env node
// The `hostflow` bin (package.json "bin"): runs cli/hostflow.ts through tsx on the project's
// Node 22 (the `node` devDependency), whatever `node` started this shim. Plain JS on purpose:
// it must run before TypeScript can. On a fresh clone (no node_modules yet) it installs the
// dependencies first, as `npm start` and `npm test` do, so `npx hostflow --help` works there.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
if (!existsSync(tsx)) {
  process.stderr.write('hostflow: dependencies are missing; installing them first (npm install)\n');
  // Its progress goes to stderr, so the command's stdout stays the command's.
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (npm.status !== 0 || !existsSync(tsx)) {
    process.stderr.write('hostflow: `npm install` failed; run it in the project and try again.\n');
    process.exit(1);
  }
}
const node22 = join(root, 'node_modules', 'node', 'bin', 'node');
const node = existsSync(node22) ? node22 : process.execPath;
const r = spawnSync(node, [tsx, join(root, 'cli', 'hostflow.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
