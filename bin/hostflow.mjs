#!/usr/bin/env node
// The `hostflow` bin (package.json "bin"): runs cli/hostflow.ts through tsx on the project's
// Node 22 (the `node` devDependency), whatever `node` started this shim. Plain JS on purpose:
// it must run before TypeScript can.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
if (!existsSync(tsx)) {
  console.error('hostflow: dependencies are missing; run `npm install` in the project first.');
  process.exit(1);
}
const node22 = join(root, 'node_modules', 'node', 'bin', 'node');
const node = existsSync(node22) ? node22 : process.execPath;
const r = spawnSync(node, [tsx, join(root, 'cli', 'hostflow.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
