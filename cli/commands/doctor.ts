import type { Command } from 'commander';
import { formatChecks, runDoctor } from '../doctor.js';

export function doctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check config, database, Temporal (reachability, namespace, search attributes, schedules), payload keys, SMTP and the nginx gateway; prints ok / fail / skip with a hint; exit 1 on any fail')
    .option('--json', 'the checks as JSON')
    .action(async (o: { json?: boolean }) => {
      const checks = await runDoctor(process.env);
      process.stdout.write(`${o.json ? JSON.stringify(checks, null, 2) : formatChecks(checks)}\n`);
      if (checks.some((c) => c.status === 'fail')) process.exitCode = 1;
    });
}
