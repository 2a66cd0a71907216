import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { Host } from '../../db/entities/index.js';
import { RemoteError } from '../remote/executor.js';
import type { WinRmExecutor } from '../winrm/winrm-executor.js';
import { check, loginFailure, refusedIsFalse } from '../remote/ops-common.js';
import { EMPTY_REPORT, type AccountOps, type HostOps, type TaskReport, type Tenant, type TenantOps } from '../remote/host-ops.js';
import * as linux from '../remote/linux.js';
import * as windows from '../remote/windows.js';

export type WindowsExecutor = Pick<WinRmExecutor, 'exec' | 'verifyLogin'>;

const heartbeat = (details: unknown) => {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isSid = (s: string | null): s is string => s !== null && /^S-1-/.test(s);

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

export function windowsAccountOps(winrm: WindowsExecutor, hostId: string): AccountOps {
  const run = (script: string, stdin?: string) => winrm.exec(hostId, script, { timeoutMs: 60_000, stdin });
  return {
    // Windows keeps no platform marker on a local account: the HostAccount row is the record.
    keepsMarker: false,
    loginGroups: ['Remote Desktop Users'],
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
    async lock(username) {
      check(await run(windows.lockUser(username)), `disable ${username} and expire its password`);
    },
    async identity(username) {
      const r = await run(windows.userSid(username));
      if (r.exitCode === windows.WINDOWS_EXIT.NO_SUCH_USER && r.stdout.includes('HOSTFLOW_NO_SUCH_USER')) return null;
      const sid = linux.parseMarkers(check(r, `SID of ${username}`).stdout).find((m) => m.marker === 'SID')?.value ?? null;
      if (!isSid(sid)) throw ApplicationFailure.retryable(`could not read the SID of ${username}`, 'AccountLookupFailed');
      return sid;
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


/** Sessions of `username` as quser lists them (names are case-insensitive on Windows). */
async function sessionsOf(winrm: WindowsExecutor, hostId: string, username: string) {
  const r = check(await winrm.exec(hostId, windows.listSessions(), { timeoutMs: 60_000 }), 'list sessions');
  return windows.parseQuser(r.stdout).filter((x) => x.username.toLowerCase() === username.toLowerCase());
}

/**
 * The tenant on a Windows host, by SID (recorded at allocation, so it works once the account is
 * gone): RDP/console sessions (quser), processes (Win32_Process + GetOwnerSid), scheduled tasks
 * (principal), the user profile (Win32_UserProfile).
 */
export function windowsTenantOps(winrm: WindowsExecutor, hostId: string): TenantOps {
  const run = (script: string, timeoutMs = 90_000) => winrm.exec(hostId, script, { timeoutMs });
  const accounts = windowsAccountOps(winrm, hostId);
  const look = async (t: Tenant) => {
    const userExists = await accounts.exists(t.username);
    const live = userExists ? await accounts.identity(t.username) : null;
    const sid = live ?? (isSid(t.identity) ? t.identity : null);
    const sessions = userExists ? await sessionsOf(winrm, hostId, t.username) : [];
    const f = sid ? windows.parseTenantFootprint(check(await run(windows.tenantFootprint({ username: t.username, sid })), `footprint of ${t.username}`).stdout) : null;
    return { userExists, sid, live, sessions, f };
  };
  const reportOf = (x: Awaited<ReturnType<typeof look>>): TaskReport => ({
    ...EMPTY_REPORT,
    userExists: x.userExists,
    sid: x.sid,
    processes: x.f?.processes.length ?? 0,
    sessions: x.sessions.length,
    scheduled: { tasks: x.f?.tasks.length ?? 0 },
    profile: !!x.f?.profile,
    notChecked: x.f ? [] : ['processes, scheduled tasks and profile (no SID known for the account)'],
    sample: [...x.sessions.map((s) => `session ${s.id} ${s.state}`), ...(x.f?.processes.map((p) => `${p.pid} ${p.name}`) ?? []), ...(x.f?.tasks.map((n) => `task ${n}`) ?? [])].slice(0, 20),
  });
  const stop: TenantOps['stop'] = async (t, termWaitMs) => {
    const signalled: string[] = [];
    let x = await look(t);
    // Logoff first: Windows asks the session's programs to end (WM_ENDSESSION) and unloads the profile.
    if (x.sessions.length) {
      check(await run(windows.logoffSessions(x.sessions.map((s) => s.id))), `log off ${t.username}`);
      signalled.push('LOGOFF');
      const until = Date.now() + termWaitMs;
      while (Date.now() < until) {
        x = await look(t);
        if (!x.f?.processes.length) break;
        heartbeat({ waiting: 'logoff' });
        await sleep(500);
      }
    }
    let ended: Record<string, unknown> | undefined;
    if (x.sid) {
      heartbeat({ ending: 'processes and tasks of the SID' });
      const m = linux.parseMarkers(check(await run(windows.stopTenant({ username: t.username, sid: x.sid }), 120_000), `stop processes and tasks of ${t.username}`).stdout);
      ended = { tasksRemoved: m.filter((v) => v.marker === 'TASK_REMOVED').length, processesStopped: m.filter((v) => v.marker === 'STOPPED').length };
      if (ended.processesStopped) signalled.push('STOP-PROCESS');
    }
    x = await look(t);
    const remaining = reportOf(x);
    if (remaining.processes || remaining.sessions || remaining.scheduled?.tasks) {
      throw ApplicationFailure.retryable(`${remaining.processes} process(es), ${remaining.sessions} session(s), ${remaining.scheduled?.tasks ?? 0} task(s) of ${t.username} are left after stopping`, 'TasksStillRunning');
    }
    return { signalled, ...(ended ? { ended } : {}), remaining };
  };
  return {
    async footprint(t) {
      const x = await look(t);
      return { report: reportOf(x), identity: x.live };
    },
    stop,
    async endAll(t) {
      await stop(t, 5_000);
    },
    async cleanLeftovers(t) {
      // The profile goes with the account (delete-account); one whose account is already gone is removed here.
      if (!isSid(t.identity) || (await accounts.exists(t.username))) return { profileRemoved: false };
      const r = check(await run(windows.removeProfile(t.identity)), `remove the profile of ${t.username}`);
      return { profileRemoved: r.stdout.includes('HOSTFLOW_PROFILE_REMOVED') };
    },
    async leftovers(t) {
      const x = await look(t);
      const left: Record<string, number> = {};
      if (x.userExists) left.account = 1;
      if (x.sessions.length) left.sessions = x.sessions.length;
      if (x.f?.processes.length) left.processes = x.f.processes.length;
      if (x.f?.tasks.length) left.scheduledTasks = x.f.tasks.length;
      if (x.f?.profile) left.profile = 1;
      return { left, notChecked: x.f ? [] : ['processes, scheduled tasks and profile (no SID known for the account)'], filesScan: 'profile' };
    },
  };
}

export function windowsHostOps(winrm: WindowsExecutor, hostId: string): HostOps {
  return { os: 'windows', accounts: windowsAccountOps(winrm, hostId), keys: null, tenant: windowsTenantOps(winrm, hostId) };
}
