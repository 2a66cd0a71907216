import type { Command } from 'commander';
import { withContext, print } from '../context.js';
import { createUser, FIRST_ADMIN_ROLES } from '../../api/routes/users/service.js';

export function adminCommands(program: Command): void {
  const admin = program.command('admin').description('administrators');
  admin
    .command('create')
    .description('create an admin user with a one-time password (must be changed at first login)')
    .option('-u, --username <name>', 'username', 'admin')
    .option('-e, --email <address>', 'email address (for password reset)')
    .action(async (o: { username: string; email?: string }) =>
      withContext(async (ctx) => {
        const em = ctx.em.fork();
        const { user, initialPassword } = await createUser(ctx, em, { username: o.username, email: o.email ?? null, roles: FIRST_ADMIN_ROLES });
        print(`created ${user.username} (${user.id}) with roles ${user.roles.join(', ')}`);
        print(`one-time password (shown once; change it at first login):\n\n    ${initialPassword}\n`);
      }),
    );
}
