import { ApplicationFailure } from '@temporalio/common';
import type { Host } from '../../db/entities/index.js';
import { RemoteError, type ExecResult, type RemoteExecutor } from './executor.js';
import type { SshExecutor } from '../ssh/ssh-executor.js';
import type { WinRmExecutor } from '../winrm/winrm-executor.js';
import { outputSummary } from './output.js';
import * as linux from './linux.js';
import * as windows from './windows.js';

/** Executors that can also open a one-off session with explicit credentials (to verify a new login). */
export type LoginVerifier = Pick<SshExecutor, 'verifyLogin'> | Pick<WinRmExecutor, 'verifyLogin'>;

/** OS-neutral account operations on one host, built from the quoted command builders. */
export interface AccountOps {
  exists(username: string): Promise<boolean>;
  /** The platform marker (reference of the request that created the account), or null. Windows keeps none: the DB row is the record. */
  readMarker(username: string): Promise<string | null>;
  create(input: { username: string; fullName: string; description: string; password: string; ref: string }): Promise<void>;
  setPassword(username: string, password: string): Promise<void>;
  addGroups(username: string, groups: string[]): Promise<void>;
  setEnabled(username: string, enabled: boolean): Promise<void>;
  remove(username: string): Promise<void>;
  verifyLogin(host: Host, username: string, password: string): Promise<{ groups: string[] }>;
  /**
   * Does a login as `username` with `password` succeed? `false` only when the host refused the
   * credentials; throws (retryable) when it cannot tell (unreachable, timed out).
   */
  loginWorks(host: Host, username: string, password: string): Promise<boolean>;
}

/** A refused login (wrong password, disabled account) is `false`; anything else that failed is "could not tell". */
async function refusedIsFalse(username: string, attempt: () => Promise<unknown>): Promise<boolean> {
  try {
    await attempt();
    return true;
  } catch (err) {
    if (err instanceof RemoteError && err.type === 'AuthenticationFailed' && err.details?.faultSubcode !== 'AccessDenied') return false;
    // WinRM's AccessDenied (HTTP 500) comes only after the password was accepted: the login works.
    if (err instanceof RemoteError && err.details?.faultSubcode === 'AccessDenied') return true;
    if (err instanceof RemoteError && err.type === 'HostKeyMismatch') throw ApplicationFailure.nonRetryable(`login as ${username}: ${err.message}`, 'HostKeyMismatch');
    throw ApplicationFailure.retryable(`could not tell whether ${username} can log in: ${(err as Error).message}`, err instanceof RemoteError ? err.type : 'HostUnreachable');
  }
}

export function check(r: ExecResult, what: string, okCodes: number[] = [0]): ExecResult {
  if (okCodes.includes(r.exitCode)) return r;
  const markers = linux.parseMarkers(r.stdout);
  const missing = markers.filter((m) => m.marker === 'MISSING_GROUP').map((m) => m.value);
  if (missing.length) throw ApplicationFailure.nonRetryable(`${what}: group(s) ${missing.join(', ')} do not exist on the host`, 'MissingGroup');
  if (markers.some((m) => m.marker === 'USER_EXISTS')) throw ApplicationFailure.nonRetryable(`${what}: the user already exists`, 'AccountExistsNotManaged');
  // Never the output itself: it reaches history and the customer-visible error (outputSummary).
  const detail = outputSummary(r);
  if (/sudo:/.test(r.stderr)) throw ApplicationFailure.nonRetryable(`${what}: the platform's login lacks passwordless sudo (${detail})`, 'PermissionDenied');
  // Unknown failures may be transient (package manager lock, NSS hiccup): let Temporal retry.
  throw ApplicationFailure.retryable(`${what} failed (${detail})`, 'RemoteCommandFailed');
}

/**
 * Classifies a failed login check: only a refused login (wrong password, locked account) is the
 * permanent `LoginVerificationFailed`; a host key mismatch stays what it is; an unreachable host,
 * a connect timeout or a command timeout is retryable (the host may come back).
 */
export function loginFailure(username: string, err: unknown): ApplicationFailure {
  const message = `login as ${username} failed: ${(err as Error).message}`;
  if (err instanceof RemoteError) {
    if (err.type === 'AuthenticationFailed') return ApplicationFailure.nonRetryable(message, 'LoginVerificationFailed');
    if (err.type === 'HostKeyMismatch') return ApplicationFailure.nonRetryable(message, 'HostKeyMismatch');
    return ApplicationFailure.retryable(message, err.type);
  }
  return ApplicationFailure.retryable(message, 'HostUnreachable');
}

export function linuxAccountOps(ssh: RemoteExecutor & Pick<SshExecutor, 'verifyLogin'>, hostId: string): AccountOps {
  const run = (cmd: string, stdin?: string) => ssh.exec(hostId, cmd, { timeoutMs: 60_000, stdin });
  return {
    async exists(username) {
      const r = await run(linux.userExists(username));
      return check(r, 'user lookup', [0, linux.LINUX_EXIT.NOT_FOUND]).exitCode === 0;
    },
    async readMarker(username) {
      return linux.parseMarkerOutput(check(await run(linux.readMarker(username)), 'marker lookup').stdout);
    },
    async create({ username, fullName, password, ref }) {
      check(await run(linux.createUser({ username, fullName, markerRef: ref })), `useradd ${username}`);
      const pw = linux.setPassword(username);
      check(await run(pw.script, pw.stdin(password)), `set password of ${username}`);
    },
    async setPassword(username, password) {
      const pw = linux.setPassword(username);
      check(await run(pw.script, pw.stdin(password)), `set password of ${username}`);
    },
    async addGroups(username, groups) {
      if (groups.length) check(await run(linux.addToGroups(username, groups)), `add ${username} to groups`);
    },
    async setEnabled(username, enabled) {
      check(await run(enabled ? linux.unlockUser(username) : linux.lockUser(username)), `${enabled ? 'unlock' : 'lock'} ${username}`);
      if (!enabled) check(await run(linux.killUserProcesses(username, 'KILL')), `end sessions of ${username}`);
    },
    async remove(username) {
      check(await run(linux.killUserProcesses(username, 'KILL')), `stop processes of ${username}`);
      check(await run(linux.deleteUser(username, { removeHome: true })), `delete ${username}`);
    },
    async verifyLogin(host, username, password) {
      let r: ExecResult;
      try {
        r = await ssh.verifyLogin({ hostId: host.id, address: host.address, port: host.port, username, password, pinnedFingerprint: host.hostKeyFingerprint ?? null }, 'id -un; id -nG');
      } catch (err) {
        throw loginFailure(username, err);
      }
      const [who, groups = ''] = r.stdout.trim().split('\n');
      if (r.exitCode !== 0 || who !== username) throw ApplicationFailure.nonRetryable(`logged in but the session is not ${username} (${who})`, 'LoginVerificationFailed');
      return { groups: groups.trim().split(/\s+/).filter(Boolean) };
    },
    async loginWorks(host, username, password) {
      return refusedIsFalse(username, async () => {
        const r = await ssh.verifyLogin({ hostId: host.id, address: host.address, port: host.port, username, password, pinnedFingerprint: host.hostKeyFingerprint ?? null }, 'id -un');
        if (r.exitCode !== 0 || r.stdout.trim() !== username) throw new Error(`logged in but the session is not ${username}`);
      });
    },
  };
}

/** How a new login as a host's account is checked over WinRM (a local account: NTLM where the host does Kerberos). */
export function windowsLoginTarget(host: Host, username: string, password: string) {
  return {
    address: host.address,
    username,
    password,
    winrmPort: host.winrmPort ?? null,
    winrmHttps: host.winrmHttps,
    // A local account: Kerberos hosts check it with NTLM (it has no principal in the realm).
    winrmAuth: host.winrmAuth === 'kerberos' ? ('ntlm' as const) : host.winrmAuth,
    winrmAllowUnencryptedBasic: host.winrmAllowUnencryptedBasic,
    pinnedFingerprint: host.hostKeyFingerprint ?? null,
  };
}

export function windowsAccountOps(winrm: WinRmExecutor, hostId: string): AccountOps {
  const run = (script: string, stdin?: string) => winrm.exec(hostId, script, { timeoutMs: 60_000, stdin });
  return {
    async exists(username) {
      // Only Windows' own "not found" means absent. An uncaught error also exits 1, but without the
      // marker: could not tell, so nothing may be recorded as deleted or rolled back — retry.
      const r = await run(windows.userExists(username));
      const markers = linux.parseMarkers(r.stdout).map((m) => m.marker);
      if (r.exitCode === 0 && markers.includes('USER_EXISTS')) return true;
      if (r.exitCode === windows.WINDOWS_EXIT.NOT_FOUND && markers.includes('NO_SUCH_USER')) return false;
      throw ApplicationFailure.retryable(`could not tell whether user ${username} exists on the host (lookup exit ${r.exitCode})`, 'AccountLookupFailed');
    },
    async readMarker() {
      return null;
    },
    async create({ username, fullName, description, password }) {
      // The password goes through stdin (WS-Man Send), never into the script / command line.
      const c = windows.createUser({ username, fullName, description: description.slice(0, 48) });
      check(await run(c.script, c.stdin(password)), `New-LocalUser ${username}`);
    },
    async setPassword(username, password) {
      const c = windows.setPassword(username);
      check(await run(c.script, c.stdin(password)), `set password of ${username}`);
    },
    async addGroups(username, groups) {
      if (groups.length) check(await run(windows.addToGroups(username, groups)), `add ${username} to groups`);
    },
    async setEnabled(username, enabled) {
      check(await run(enabled ? windows.enableUser(username) : windows.disableUser(username)), `${enabled ? 'enable' : 'disable'} ${username}`);
    },
    async remove(username) {
      // Their sessions end first (a logged-on user's profile is loaded and cannot be deleted), as
      // Linux kills the user's processes before userdel.
      const mine = windows.parseQuser(check(await run(windows.listSessions()), 'list sessions').stdout).filter((x) => x.username.toLowerCase() === username.toLowerCase());
      if (mine.length) check(await run(windows.logoffSessions(mine.map((x) => x.id))), `log off ${username}`);
      // Only platform-created accounts are removed: their profile (C:\Users\<name>) goes with them.
      check(await run(windows.deleteUser(username, { removeProfile: true })), `delete ${username}`);
    },
    async verifyLogin(host, username, password) {
      try {
        const r = await winrm.verifyLogin(windowsLoginTarget(host, username, password), "Write-Output 'HOSTFLOW_LOGIN_OK'");
        if (r.exitCode !== 0 || !r.stdout.includes('HOSTFLOW_LOGIN_OK')) throw ApplicationFailure.nonRetryable(`login as ${username} did not run a command`, 'LoginVerificationFailed');
      } catch (err) {
        // WinRM lets only Administrators (and, depending on policy, Remote Management Users) open a
        // shell; an RDP account gets w:AccessDenied (HTTP 500) — which the service sends only after
        // the password was accepted and the account found enabled (otherwise HTTP 401).
        const accessDenied = err instanceof RemoteError && err.type === 'AuthenticationFailed' && err.details?.faultSubcode === 'AccessDenied';
        if (!accessDenied) {
          if (err instanceof ApplicationFailure) throw err;
          throw loginFailure(username, err);
        }
      }
      // Group membership is read with the admin session (a new non-admin user cannot list groups).
      const r = check(await run(windows.userGroups(username)), `groups of ${username}`);
      const groups = linux.parseMarkers(r.stdout).filter((m) => m.marker === 'MEMBER_OF').map((m) => m.value);
      return { groups };
    },
    async loginWorks(host, username, password) {
      return refusedIsFalse(username, async () => {
        const r = await winrm.verifyLogin(windowsLoginTarget(host, username, password), "Write-Output 'HOSTFLOW_LOGIN_OK'");
        if (r.exitCode !== 0 || !r.stdout.includes('HOSTFLOW_LOGIN_OK')) throw new Error(`login as ${username} did not run a command`);
      });
    },
  };
}

export function accountOpsFor(os: Host['os'], executor: RemoteExecutor, hostId: string): AccountOps {
  return os === 'windows' ? windowsAccountOps(executor as WinRmExecutor, hostId) : linuxAccountOps(executor as SshExecutor, hostId);
}
