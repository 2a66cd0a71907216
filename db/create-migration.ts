// Generates a migration from the difference between the entities and the schema the existing
// migrations produce, against a throwaway in-memory PGlite. Usage: npm run migration:create [-- name]
import { writeFile, readFile } from 'node:fs/promises';
import { initORM } from './orm.js';

const name = process.argv[2];
const db = await initORM({ pgliteDir: 'memory://' }, { migrate: true });
try {
  const applied = await db.orm.migrator.getExecuted();
  const result = applied.length === 0
    ? await db.orm.migrator.create(undefined, false, true, name)
    : await db.orm.migrator.create(undefined, false, false, name);
  if (!result.fileName) {
    console.log('No schema changes: no migration created.');
  } else {
    const cls = /export class (\w+)/.exec(result.code)?.[1];
    console.log(`Created db/migrations/${result.fileName} (${cls}). Registering it in db/migrations/index.ts.`);
    const indexPath = 'db/migrations/index.ts';
    let index = await readFile(indexPath, 'utf8');
    const base = result.fileName.replace(/\.ts$/, '');
    index = index.replace(/^(import type .*\n)/m, `$1import { ${cls} } from './${base}.js';\n`);
    index = index.replace('  // (new migrations above)', `  { name: '${base}', class: ${cls} },\n  // (new migrations above)`);
    await writeFile(indexPath, index);
  }
} finally {
  await db.close();
}
