// npm run docs:permissions — writes docs/permissions.md (and the README's Permissions section) from the route table (the app's defineRoute
// specs) and the built-in roles. Builds the app without serving it: no database or Temporal is
// touched, the dependencies are only captured by the route factories.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createApp, routeTable } from '../api/app.js';
import { permissionsMarkdown, readmePermissionsSection, withReadmePermissions } from '../api/authz/matrix.js';
import { createLogger } from '../config/logger.js';
import type { AppDeps } from '../api/deps.js';

const inert = new Proxy({}, { get: () => { throw new Error('docs:permissions does not serve requests'); } });
const app = createApp({
  em: inert as AppDeps['em'],
  vault: inert as AppDeps['vault'],
  logger: createLogger({ level: 'silent' }),
  temporal: { client: inert as AppDeps['temporal']['client'], taskQueue: 'docs' },
  settings: { accountOpeningExpiryDays: 7 },
  checks: { db: async () => undefined, temporal: async () => undefined },
});
await mkdir('docs', { recursive: true });
await writeFile('docs/permissions.md', permissionsMarkdown(routeTable(app)));
await writeFile('README.md', withReadmePermissions(await readFile('README.md', 'utf8'), readmePermissionsSection(routeTable(app))));
console.log(`docs/permissions.md and README.md: ${routeTable(app).length} routes`);
