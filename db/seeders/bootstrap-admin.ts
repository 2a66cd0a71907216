import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UserSchema } from '../entities/index.js';
import { generateToken, hashToken } from '../../api/middleware/auth.js';

/**
 * Makes sure an `admin` user exists. Its API token comes from HOSTFLOW_ADMIN_TOKEN or is generated
 * once and written to `tokenFile` (mode 0600); only the hash is stored. Never logged.
 */
export async function bootstrapAdmin(em: SqlEntityManager, opts: { token?: string; tokenFile: string }): Promise<{ created: boolean; tokenFile?: string }> {
  const fork = em.fork();
  const existing = await fork.findOne(UserSchema, { username: 'admin' });
  if (existing) {
    if (opts.token && existing.apiTokenHash !== hashToken(opts.token)) {
      existing.apiTokenHash = hashToken(opts.token);
      await fork.flush();
    }
    return { created: false, tokenFile: opts.token ? undefined : opts.tokenFile };
  }
  const token = opts.token ?? generateToken();
  fork.create(UserSchema, { username: 'admin', roles: ['admin', 'approver', 'operator'], apiTokenHash: hashToken(token) });
  await fork.flush();
  if (!opts.token) {
    await mkdir(dirname(opts.tokenFile), { recursive: true });
    await writeFile(opts.tokenFile, token + '\n', { mode: 0o600 });
    await chmod(opts.tokenFile, 0o600);
    return { created: true, tokenFile: opts.tokenFile };
  }
  return { created: true };
}
