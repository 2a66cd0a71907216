import type { Command } from 'commander';
import { withContext, print } from '../context.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../../api/routes/api-keys/service.js';
import { UserSchema } from '../../db/entities/index.js';
import { unknownRoles } from '../../api/routes/roles/service.js';
import { notFound, validationError } from '../../api/errors.js';

export function apiKeyCommands(program: Command): void {
  const k = program.command('apikey').description('API keys for automation');
  k.command('create')
    .description('create an API key (printed once; only its hash is stored)')
    .requiredOption('-u, --user <username>', 'owner')
    .requiredOption('-n, --name <name>', 'what the key is for')
    .option('-r, --roles <roles>', "comma-separated subset of the owner's roles (rows of the roles table)")
    .option('--expires <iso-date>', 'expiry, e.g. 2027-01-01T00:00:00Z')
    .action(async (o: { user: string; name: string; roles?: string; expires?: string }) =>
      withContext(async (ctx) => {
        const owner = await ctx.em.fork().findOne(UserSchema, { username: o.user });
        if (!owner) throw notFound(`user ${o.user}`);
        const roles = o.roles?.split(',').map((r) => r.trim()).filter(Boolean);
        const bad = roles ? await unknownRoles(ctx.em, roles) : [];
        if (bad?.length) throw validationError([{ field: 'roles', message: `unknown roles: ${bad.join(', ')}` }]);
        const expiresAt = o.expires ? new Date(o.expires) : null;
        if (expiresAt && Number.isNaN(expiresAt.getTime())) throw validationError([{ field: 'expires', message: 'must be an ISO date' }]);
        const { key, row } = await createApiKey(ctx.em, { userId: owner.id, name: o.name, roles, expiresAt });
        print(`api key ${row.id} (${row.name}) for ${owner.username}, roles ${row.roles.join(', ')}${row.expiresAt ? `, expires ${row.expiresAt.toISOString()}` : ''}`);
        print(`key (shown once): ${key}`);
      }),
    );
  k.command('list')
    .description('list API keys (never the keys themselves)')
    .option('-u, --user <username>', 'only this owner')
    .action(async (o: { user?: string }) =>
      withContext(async (ctx) => {
        const em = ctx.em.fork();
        const owner = o.user ? await em.findOne(UserSchema, { username: o.user }) : null;
        if (o.user && !owner) throw notFound(`user ${o.user}`);
        const rows = await listApiKeys(ctx.em, owner?.id);
        const names = new Map((await em.find(UserSchema, { id: { $in: [...new Set(rows.map((r) => r.userId))] } })).map((u) => [u.id, u.username]));
        for (const r of rows) {
          const state = r.revokedAt ? 'revoked' : r.expiresAt && r.expiresAt <= new Date() ? 'expired' : 'active';
          print([r.id, names.get(r.userId), r.name, `${r.prefix}…`, r.roles.join(','), state, r.lastUsedAt ? `last used ${r.lastUsedAt.toISOString()} from ${r.lastUsedIp}` : 'never used'].join('  '));
        }
        if (!rows.length) print('no api keys');
      }),
    );
  k.command('revoke <id>')
    .description('revoke an API key (effective on its next request)')
    .action(async (id: string) =>
      withContext(async (ctx) => {
        if (!/^[0-9a-f-]{36}$/i.test(id)) throw validationError([{ field: 'id', message: 'must be an api key id (uuid)' }]);
        const row = await revokeApiKey(ctx.em, { id });
        print(`revoked ${row.id} (${row.name})`);
      }),
    );
}
