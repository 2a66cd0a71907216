// `hostflow`: what you need before the API is usable or when locked out. Same configuration
// (environment, DATA_DIR) and the same services as the API. One file per command group.
import { Command } from 'commander';
import { adminCommands } from './commands/admin.js';
import { userCommands } from './commands/user.js';
import { apiKeyCommands } from './commands/apikey.js';
import { keyCommands } from './commands/keys.js';
import { auditCommands } from './commands/audit.js';
import { runsCommands } from './commands/runs.js';
import { doctorCommands } from './commands/doctor.js';

const program = new Command('hostflow')
  .description('Hostflow administration (uses DATABASE_URL / DATA_DIR and the other settings of `npm start`)')
  .showHelpAfterError();
adminCommands(program);
userCommands(program);
apiKeyCommands(program);
keyCommands(program);
auditCommands(program);
runsCommands(program);
doctorCommands(program);

await program.parseAsync(process.argv);
