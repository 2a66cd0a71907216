// `npm run migrate`: applies pending migrations to the configured database (DATABASE_URL, or the
// embedded PGlite under DATA_DIR) and exits. `npm start` does this on its own at startup.
import { env } from '../config/env.js';
import { dbTarget } from '../config/runtime.js';
import { initORM } from './orm.js';

const db = await initORM(dbTarget(env()), { migrate: false });
try {
  const pending = await db.orm.migrator.getPending();
  await db.orm.migrator.up();
  console.log(pending.length ? `applied ${pending.map((m) => m.name).join(', ')}` : 'database is up to date');
} finally {
  await db.close();
}
