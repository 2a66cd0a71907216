import type { Command } from 'commander';
import { withContext, print } from '../context.js';
import { rotateSecrets } from '../../db/rotate-secrets.js';

export function keyCommands(program: Command): void {
  const keys = program.command('keys').description('encryption keys of secrets at rest');
  keys
    .command('rotate')
    .description('re-encrypt every stored secret under the active key (the first in HOSTFLOW_ENCRYPTION_KEYS); idempotent')
    .action(async () =>
      withContext(async (ctx) => {
        const r = await rotateSecrets(ctx.em, ctx.vault);
        print(`active key ${ctx.vault.activeKeyId}: re-encrypted ${r.hostCredentials} host credentials, ${r.hostAccounts} account passwords and ${r.totpSeeds} TOTP seeds (${r.unchanged} already current)`);
      }),
    );
}
