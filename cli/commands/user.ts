import type { Command } from 'commander';
import { withContext, print } from '../context.js';
import { adminResetPassword, disableUser, unlockUser } from '../../api/routes/users/service.js';

export function userCommands(program: Command): void {
  const user = program.command('user').description('platform users');
  user
    .command('reset-password <username>')
    .description('set a new generated password (shown once, must be changed at next login); ends the user\'s sessions')
    .action(async (username: string) =>
      withContext(async (ctx) => {
        const { user: u, password } = await adminResetPassword(ctx, { username });
        print(`new one-time password for ${u.username} (shown once; change it at next login):\n\n    ${password}\n`);
      }),
    );
  user
    .command('unlock <username>')
    .description('clear the failed-login lock of an account')
    .action(async (username: string) =>
      withContext(async (ctx) => {
        const { user: u, wasLocked } = await unlockUser(ctx, { username }, 'cli');
        print(wasLocked ? `unlocked ${u.username}` : `${u.username} was not locked`);
      }),
    );
  user
    .command('disable <username>')
    .description('disable a user: sessions end now, API keys stop working')
    .action(async (username: string) =>
      withContext(async (ctx) => {
        const u = await disableUser(ctx, { username });
        print(`disabled ${u.username}`);
      }),
    );
}
