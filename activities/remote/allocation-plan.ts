// The plan preview of an allocation's provisioning and of its reclaim: the commands the allocation
// and reclaim activities run on the host, produced by the very builders they call (linux.* and
// linuxAccountOps over a recording executor), in the workflows' step order. Nothing reaches a
// host and nothing is written. What only exists at run time is shown as a placeholder: the
// generated password, the throwaway verification key, and (before provisioning recorded it) the
// account's uid. Branches that depend on what the host answers are named in `notes`.
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import type { Host } from '../../db/entities/index.js';
import type { ExecOptions, ExecResult, RemoteExecutor } from './executor.js';
import { linuxAccountOps } from './account-ops.js';
import { classifyCommand } from './audited-executor.js';
import { generatePassword } from './passwords.js';
import { allocationRef } from './allocation.activities.js';
import type { PlannedCommand } from './account-plan.js';
import * as linux from './linux.js';
import * as vnc from './vnc.js';

export const ALLOCATION_PASSWORD_PLACEHOLDER = '<generated password, 20 chars>';
export const VERIFICATION_KEY_PLACEHOLDER = '<throwaway ed25519 verification key, generated at run time>';
export const TERMINAL_KEY_PLACEHOLDER = '<web terminal key, generated at provisioning>';
export const UID_PLACEHOLDER = '<uid found on the host>';
export const VNC_PASSWORD_FILE_PLACEHOLDER = '<VNC password file (vncpasswd format, base64), generated at deploy>';

export interface PlannedStepCommand extends Omit<PlannedCommand, 'sha256'> {
  /** SHA-256 of `command` (what remote.exec audit rows record); null when a placeholder is in the command itself. */
  sha256: string | null;
}

export interface AllocationPlanInput {
  allocation: { id: string; osUsername: string; host: Pick<Host, 'id' | 'os' | 'address' | 'port' | 'username'> };
  fullName: string;
  /** Active keys of the customer user, oldest first (what inject-keys adds). */
  activeKeys: string[];
  /** Every fingerprint of the customer user's keys, revoked ones too (what revoke-keys removes). */
  allFingerprints: string[];
  /** The web terminal key's public line if it exists already. */
  terminalKey: string | null;
  /** Accounts earlier allocations left on the host (clean-previous removes them). */
  leftovers: Array<{ username: string; uid: number | null; allocationId: string }>;
  /** The uid provisioning recorded on the account row (null: not yet). */
  uid: number | null;
  /** The allocation asked for VNC auto-deployment and its service is not removed (deploy-vnc / stop-vnc run). */
  vnc?: boolean;
}

export interface AllocationPlan {
  allocation_id: string;
  os_username: string;
  commands: PlannedStepCommand[];
  notes: string[];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
// A uid no account has, put in the builders where the real one is not known yet, then shown as a placeholder.
const SENTINEL_UID = 2_147_000_123;

/** An executor that records each command and answers as a host where `present` users exist (marker = theirs). */
function recorder(present: Map<string, string>) {
  const out: Array<{ step: string; command: string; stdin?: string }> = [];
  let step = '';
  const exec: RemoteExecutor = {
    async exec(_hostId: string, command: string, opts?: ExecOptions): Promise<ExecResult> {
      out.push({ step, command, stdin: opts?.stdin });
      for (const [user, marker] of present) {
        if (command === linux.userExists(user)) return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
        if (command === linux.readMarker(user)) return { exitCode: 0, stdout: `${marker}\n`, stderr: '', durationMs: 0 };
      }
      if (/ 'hostflow-user-exists'(?= |$)/.test(command)) return { exitCode: linux.LINUX_EXIT.NOT_FOUND, stdout: '', stderr: '', durationMs: 0 };
      return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
    },
    evict() {},
    async close() {},
  };
  return { exec, out, at: (s: string) => (step = s) };
}

function toPlanned(recorded: Array<{ step: string; command: string; stdin?: string }>, replace: Array<[string, string]>): PlannedStepCommand[] {
  return recorded.map((r) => {
    const kind = classifyCommand(r.command);
    let command = r.command;
    let stdin = r.stdin ?? null;
    for (const [from, to] of replace) {
      command = command.split(from).join(to);
      if (stdin !== null) stdin = stdin.split(from).join(to);
    }
    return { step: r.step, builder: kind.builder, change: kind.change, command, stdin, sha256: command === r.command ? sha256(r.command) : null };
  });
}

const noVerify = { verifyLogin: async () => { throw new Error('the plan never logs in'); } };

/** The commands allocation provisioning runs (clean-previous, create-account, inject-keys, verify-login), on a host without the account yet. */
export async function planAllocation(input: AllocationPlanInput, steps: readonly string[]): Promise<AllocationPlan> {
  const { allocation: a } = input;
  const leftovers = new Map(input.leftovers.map((l) => [l.username, allocationRef(l.allocationId)]));
  const rec = recorder(leftovers);
  const ops = linuxAccountOps({ ...rec.exec, ...noVerify }, a.host.id);
  const run = (cmd: string, stdin?: string) => rec.exec.exec(a.host.id, cmd, { stdin });
  const password = generatePassword(20);
  const verifyKey = ssh2.utils.generateKeyPairSync('ed25519', { comment: `hostflow-verify-${a.id}` }).public.trim();
  const vncFile = vnc.vncPasswordFile(vnc.generateVncPassword());
  const terminalKey = input.terminalKey ?? ssh2.utils.generateKeyPairSync('ed25519', { comment: `hostflow-terminal-${a.id}` }).public.trim();
  for (const step of steps) {
    rec.at(step);
    if (step === 'clean-previous') {
      for (const l of input.leftovers) {
        if (await ops.exists(l.username)) {
          await ops.readMarker(l.username);
          await run(linux.endTenantActivity({ username: l.username, uid: l.uid ?? undefined, allocationId: l.allocationId }));
          await run(linux.cleanupUserLeftovers(l.username));
          await ops.remove(l.username);
        }
      }
    } else if (step === 'create-account') {
      if (!(await ops.exists(a.osUsername))) await ops.create({ username: a.osUsername, fullName: input.fullName, description: '', password, ref: allocationRef(a.id) });
      await run(linux.userUid(a.osUsername));
    } else if (step === 'inject-keys') {
      const keys = [...input.activeKeys, terminalKey];
      const cmd = linux.addAuthorizedKeys(a.osUsername, keys);
      await run(cmd.script, cmd.stdin);
    } else if (step === 'verify-login') {
      const add = linux.addAuthorizedKeys(a.osUsername, [verifyKey]);
      await run(add.script, add.stdin);
      const rm = linux.removeAuthorizedKeys(a.osUsername, [verifyKey]);
      await run(rm.script, rm.stdin);
      await run(linux.listAuthorizedKeys(a.osUsername));
    } else if (step === 'deploy-vnc') {
      // The activity's one command: the password file travels on stdin (generated there, never planned).
      const cmd = vnc.deployVnc(a.osUsername, vncFile);
      await run(cmd.script, cmd.stdin);
    }
  }
  const commands = toPlanned(rec.out, [
    [password, ALLOCATION_PASSWORD_PLACEHOLDER],
    [verifyKey, VERIFICATION_KEY_PLACEHOLDER],
    [vncFile.toString('base64'), VNC_PASSWORD_FILE_PLACEHOLDER],
    ...(input.terminalKey ? [] : [[terminalKey, TERMINAL_KEY_PLACEHOLDER] as [string, string]]),
  ]);
  if (commands.some((c) => c.command.includes(password))) throw new Error('a password reached a command line'); // never: setPassword takes it on stdin
  return {
    allocation_id: a.id,
    os_username: a.osUsername,
    commands,
    notes: [
      `verify-login logs in over SSH as ${a.osUsername} with the throwaway key (id -un) between adding and removing it; then every customer key must be listed.`,
      `If ${a.osUsername} exists already with this allocation's marker (a re-run), its marker is read and the stored password set again (hostflow-set-password) instead of hostflow-create-user.`,
      'A key revoked while inject-keys runs is taken off again right after (hostflow-remove-authorized-keys).',
      'send-summary runs no host command (the gateway opens the entries, the summary is mailed).',
      ...(steps.includes('deploy-vnc')
        ? [`deploy-vnc installs tigervnc-standalone-server (apt-get) only when the host has no Xvnc, starts Xvnc as ${a.osUsername} on the first free display from :${vnc.VNC_FIRST_DISPLAY} (RFB port 5900 + display) unless its platform server runs already, and adds the host's vnc remote-access entry; the password is generated there and stored encrypted only.`]
        : []),
    ],
  };
}

/** The commands reclaim runs, in its step order, on a host where the account (with its marker) still exists. */
export async function planReclaim(input: AllocationPlanInput, steps: readonly string[]): Promise<AllocationPlan> {
  const { allocation: a } = input;
  const rec = recorder(new Map([[a.osUsername, allocationRef(a.id)]]));
  const ops = linuxAccountOps({ ...rec.exec, ...noVerify }, a.host.id);
  const run = (cmd: string, stdin?: string) => rec.exec.exec(a.host.id, cmd, { stdin });
  const uid = input.uid ?? undefined;
  const ours = async () => {
    await ops.exists(a.osUsername);
    await ops.readMarker(a.osUsername);
  };
  for (const step of steps) {
    rec.at(step);
    if (step === 'stop-vnc') {
      await run(vnc.removeVnc(a.osUsername));
    } else if (step === 'check-tasks') {
      await run(linux.tenantFootprint({ username: a.osUsername, uid, allocationId: a.id, files: 'outside-home-tmp' }));
    } else if (step === 'stop-tasks') {
      await run(linux.tenantFootprint({ username: a.osUsername, uid, allocationId: a.id, files: 'none' }));
      await run(linux.endTenantActivity({ username: a.osUsername, uid, allocationId: a.id }));
      await run(linux.tenantFootprint({ username: a.osUsername, uid, allocationId: a.id, files: 'none' }));
    } else if (step === 'revoke-keys') {
      await ours();
      if (input.allFingerprints.length) {
        const cmd = linux.removeAuthorizedKeys(a.osUsername, [...new Set(input.allFingerprints)]);
        await run(cmd.script, cmd.stdin);
      }
    } else if (step === 'lock-account') {
      await ours();
      await run(linux.lockUser(a.osUsername, { expirePassword: true }));
    } else if (step === 'clean-leftovers') {
      await ours();
      await run(linux.cleanupUserLeftovers(a.osUsername));
      await run(linux.tenantFootprint({ username: a.osUsername, uid, allocationId: a.id, files: 'none' }));
      await run(linux.removeTenantFiles({ username: a.osUsername, uid: input.uid ?? SENTINEL_UID }));
    } else if (step === 'delete-account') {
      await ours();
      await ops.remove(a.osUsername);
    } else if (step === 'verify-clean') {
      await run(linux.tenantFootprint({ username: a.osUsername, uid, allocationId: a.id, files: 'everywhere' }));
    }
  }
  return {
    allocation_id: a.id,
    os_username: a.osUsername,
    commands: toPlanned(rec.out, input.uid === null ? [[String(SENTINEL_UID), UID_PLACEHOLDER]] : []),
    notes: [
      'stop-tasks: when the footprint shows processes or SSH connections, they get SIGTERM first (hostflow-kill-user-processes) and the footprint is read again every 0.5 s for up to 10 s; running tasks wait for the grace period unless the reclaim is forced.',
      'verify-clean reads the footprint up to 3 times, 2 s apart, until nothing of the tenant is left.',
      'restore-template applies the host\'s environment template if it has one; release-host runs no host command.',
      `If the allocation never created ${a.osUsername} (or it is gone), the account steps do nothing to the host.`,
      ...(steps.includes('stop-vnc') ? ["stop-vnc also deletes the host's vnc remote-access entry and wipes the stored VNC password (no host command)."] : []),
    ],
  };
}
