// The plan preview of an account opening: the commands provisionAccount + verifyAccountLogin will
// run on the host, produced by running the very AccountOps (and so the very quoted builders) that
// execute them against a recording executor instead of a host. Nothing reaches a host; the one
// secret (the generated password, which only exists at provisioning) is shown as a placeholder.
import { createHash } from 'node:crypto';
import type { Host } from '../../db/entities/index.js';
import type { ExecOptions, ExecResult, RemoteExecutor } from './executor.js';
import { accountOpsFor } from './account-ops.js';
import { defaultGroups } from './account.activities.js';
import { classifyCommand } from './audited-executor.js';
import { generatePassword } from './passwords.js';
import * as linux from './linux.js';
import * as windows from './windows.js';

export const PASSWORD_LENGTH = 20;
export const PASSWORD_PLACEHOLDER = `<generated password, ${PASSWORD_LENGTH} chars>`;

export interface PlannedCommand {
  /** What the step does, in the workflow's words. */
  step: string;
  /** The builder that produced it (`hostflow-create-user`, `ps:New-LocalUser`, …), as the audit names it. */
  builder: string;
  /** Whether it changes the host (read-only lookups are not audited). */
  change: boolean;
  /** The command exactly as it will be sent (no secret is ever in a command line). */
  command: string;
  /** What goes to its stdin, with the password as PASSWORD_PLACEHOLDER; null: nothing. */
  stdin: string | null;
  /** SHA-256 of `command`: what the audit records for every change (remote.exec command_sha256). */
  sha256: string;
}

export interface AccountOpeningPlan {
  host: { id: string; os: Host['os']; address: string; port: number; username: string };
  username: string;
  groups: string[];
  commands: PlannedCommand[];
  /** The last step, a login rather than a command through the platform's admin session. */
  verify: string;
  /** The other branch the workflow takes, in words (what the preview cannot know in advance). */
  notes: string[];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Runs `fn` with AccountOps over an executor that records each command and its stdin and answers
 * as a host where the user does not exist yet would (the lookup's "not found"; success otherwise).
 */
async function record(os: Host['os'], hostId: string, username: string, fn: (ops: ReturnType<typeof accountOpsFor>) => Promise<void>, step: () => string): Promise<Array<{ step: string; command: string; stdin?: string }>> {
  const out: Array<{ step: string; command: string; stdin?: string }> = [];
  const lookup = os === 'windows' ? windows.userExists(username) : linux.userExists(username);
  const recorder: RemoteExecutor = {
    async exec(_hostId: string, command: string, opts?: ExecOptions): Promise<ExecResult> {
      out.push({ step: step(), command, stdin: opts?.stdin });
      if (command !== lookup) return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
      return os === 'windows'
        ? { exitCode: windows.WINDOWS_EXIT.NOT_FOUND, stdout: `HOSTFLOW_NO_SUCH_USER ${username}\n`, stderr: '', durationMs: 0 }
        : { exitCode: linux.LINUX_EXIT.NOT_FOUND, stdout: '', stderr: '', durationMs: 0 };
    },
    evict() {},
    async close() {},
  };
  await fn(accountOpsFor(os, recorder, hostId));
  return out;
}

/**
 * The plan of a pending account opening on `host`: the same calls provisionAccount makes on a host
 * where the user does not exist yet (lookup, create with the password, groups), then the login check.
 */
export async function planAccountOpening(
  host: Pick<Host, 'id' | 'os' | 'address' | 'port' | 'username'>,
  req: { id: string; username: string; fullName: string; description?: string | null; groups: string[]; isAdmin: boolean },
): Promise<AccountOpeningPlan> {
  const groups = defaultGroups(host, req.groups, req.isAdmin);
  // A real generated password (the builders validate it), replaced by the placeholder afterwards.
  const sentinel = generatePassword(PASSWORD_LENGTH);
  let step = 'check-existing';
  const recorded = await record(host.os, host.id, req.username, async (ops) => {
    await ops.exists(req.username);
    step = 'create';
    await ops.create({ username: req.username, fullName: req.fullName, description: req.description ?? '', password: sentinel, ref: `account-opening/${req.id}` });
    step = 'groups';
    await ops.addGroups(req.username, groups);
  }, () => step);
  const commands = recorded.map((r) => {
    const kind = classifyCommand(r.command);
    if (r.command.includes(sentinel)) throw new Error('a password reached a command line'); // never: builders pass it on stdin
    return { step: r.step, builder: kind.builder, change: kind.change, command: r.command, stdin: r.stdin === undefined ? null : r.stdin.split(sentinel).join(PASSWORD_PLACEHOLDER), sha256: sha256(r.command) };
  });
  return {
    host: { id: host.id, os: host.os, address: host.address, port: host.port, username: host.username },
    username: req.username,
    groups,
    commands,
    verify: host.os === 'windows'
      ? `log in over WinRM as ${req.username} with the new password (Write-Output 'HOSTFLOW_LOGIN_OK'), then read its groups with the admin session`
      : `log in over SSH as ${req.username} with the new password and run: id -un; id -nG (the groups must include ${groups.join(', ') || 'none'})`,
    notes: [
      `If ${req.username} already exists on the host and carries this request's marker (a re-run), the password is set instead (${host.os === 'windows' ? 'Set-LocalUser' : 'hostflow-set-password'}) and nothing is created; an existing account the platform did not create fails the request (AccountExistsNotManaged).`,
      'If a step fails for good, the account this request created is removed again (rollback).',
    ],
  };
}
