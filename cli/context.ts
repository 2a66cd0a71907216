// What CLI commands run against: the same configuration and services as the API (env, database
// with migrations, Vault, identity settings) — without Temporal, which none of them needs.
import { join } from 'node:path';
import { env } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { dbTarget } from '../config/runtime.js';
import { initORM, type Db } from '../db/orm.js';
import { loadKeyring, Vault } from '../db/vault.js';
import { identityFromRuntime } from '../api/server.js';
import type { AuthDeps } from '../api/deps.js';
import { ApiError } from '../api/errors.js';

export interface CliContext extends AuthDeps {
  db: Db;
  vault: Vault;
}

/** Opens the context, runs `fn`, closes it; API errors become one readable line and exit code 1. */
export async function withContext(fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const e = env();
  const logger = createLogger({ level: e.LOG_LEVEL === 'info' ? 'warn' : e.LOG_LEVEL, name: 'hostflow-cli' });
  const vault = new Vault(await loadKeyring(e.HOSTFLOW_ENCRYPTION_KEYS, join(e.DATA_DIR, 'keys')));
  let db: Db;
  try {
    db = await initORM(dbTarget(e));
  } catch (err) {
    const msg = (err as Error).message;
    process.stderr.write(`hostflow: cannot open the database: ${msg}\n${e.DATABASE_URL ? '' : '(the embedded PGlite database is single-process: stop `npm start` first)\n'}`);
    process.exitCode = 1;
    return;
  }
  try {
    const identity = await identityFromRuntime({ env: e, mailer: null });
    await fn({ em: db.em, vault, logger, identity, db });
  } catch (err) {
    if (err instanceof ApiError) {
      const fields = err.errors?.map((f) => `${f.field}: ${f.message}`).join('; ');
      process.stderr.write(`hostflow: ${fields ?? err.message}\n`);
      process.exitCode = 1;
    } else throw err;
  } finally {
    await db.close();
  }
}

export const print = (s: string) => void process.stdout.write(`${s}\n`);
