import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { Host } from '../../db/entities/index.js';
import type { ExecResult, RemoteExecutor } from '../remote/executor.js';
import type { SshExecutor } from '../ssh/ssh-executor.js';
import { check, loginFailure, refusedIsFalse } from '../remote/ops-common.js';
import type { AccountOps, HostOps, KeyOps, TaskReport, Tenant, TenantOps } from '../remote/host-ops.js';
import * as linux from '../remote/linux.js';

export type LinuxExecutor = RemoteExecutor & Pick<SshExecutor, 'verifyLogin'>;

const heartbeat = (details: unknown) => {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const target = (host: Host, username: string) => ({ hostId: host.id, address: host.address, port: host.port, username, pinnedFingerprint: host.hostKeyFingerprint ?? null });

/** Accounts on a Linux host over SSH (useradd/usermod/chpasswd/userdel, marker in the account). */
export function linuxAccountOps(ssh: LinuxExecutor, hostId: string): AccountOps {
  const run = (cmd: string, stdin?: string) => ssh.exec(hostId, cmd, { timeoutMs: 60_000, stdin });
  return {
    keepsMarker: true,
    loginGroups: [],
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
    async lock(username) {
      check(await run(linux.lockUser(username, { expirePassword: true })), `lock ${username}`);
    },
    async remove(username) {
      check(await run(linux.killUserProcesses(username, 'KILL')), `stop processes of ${username}`);
      check(await run(linux.deleteUser(username, { removeHome: true })), `delete ${username}`);
    },
    async identity(username) {
      const r = await run(linux.userUid(username));
      if (r.exitCode !== 0) return null;
      const uid = Number(r.stdout.trim());
      return Number.isInteger(uid) && uid > 0 ? String(uid) : null;
    },
    async verifyLogin(host, username, password) {
      let r: ExecResult;
      try {
        r = await ssh.verifyLogin({ ...target(host, username), password }, 'id -un; id -nG');
      } catch (err) {
        throw loginFailure(username, err);
      }
      const [who, groups = ''] = r.stdout.trim().split('\n');
      if (r.exitCode !== 0 || who !== username) throw ApplicationFailure.nonRetryable(`logged in but the session is not ${username} (${who})`, 'LoginVerificationFailed');
      return { groups: groups.trim().split(/\s+/).filter(Boolean) };
    },
    async loginWorks(host, username, password) {
      return refusedIsFalse(username, async () => {
        const r = await ssh.verifyLogin({ ...target(host, username), password }, 'id -un');
        if (r.exitCode !== 0 || r.stdout.trim() !== username) throw new Error(`logged in but the session is not ${username}`);
      });
    },
  };
}

export function linuxKeyOps(ssh: LinuxExecutor, hostId: string): KeyOps {
  const run = (cmd: string, stdin?: string) => ssh.exec(hostId, cmd, { timeoutMs: 60_000, stdin });
  return {
    async add(username, keys) {
      const cmd = linux.addAuthorizedKeys(username, keys);
      const m = linux.parseMarkers(check(await run(cmd.script, cmd.stdin), `add keys for ${username}`).stdout);
      return { added: m.filter((x) => x.marker === 'KEY_ADDED').length, present: m.filter((x) => x.marker === 'KEY_PRESENT').length };
    },
    async remove(username, fps) {
      const cmd = linux.removeAuthorizedKeys(username, fps);
      return linux.parseMarkers(check(await run(cmd.script, cmd.stdin), `remove keys of ${username}`).stdout).filter((m) => m.marker === 'KEY_REMOVED').length;
    },
    async list(username) {
      return linux.parseMarkers(check(await run(linux.listAuthorizedKeys(username)), `list keys of ${username}`).stdout)
        .filter((m) => m.marker === 'KEY')
        .map((m) => m.value);
    },
    async verifyKeyLogin(host, username, privateKey) {
      let out;
      try {
        out = await ssh.verifyLogin({ ...target(host, username), privateKey }, 'id -un');
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`key login as ${username} failed: ${(err as Error).message}`, 'LoginVerificationFailed');
      }
      if (out.exitCode !== 0 || out.stdout.trim() !== username) throw ApplicationFailure.nonRetryable(`logged in but the session is not ${username}`, 'LoginVerificationFailed');
    },
  };
}

function reportOf(f: linux.TenantFootprint): TaskReport {
  return {
    userExists: f.userExists,
    uid: f.uid,
    ...(f.uidReassigned ? { uidReassigned: f.uidReassigned } : {}),
    processes: f.processes.length,
    sshConnections: f.sshConnections,
    gpuProcesses: f.gpuProcesses.length,
    containers: f.containers.filter((c) => c.attributed).length,
    sessions: f.sessions.length,
    scheduled: { atJobs: f.atJobs.length, crontab: f.crontabs.length, linger: f.linger, userUnits: f.userUnits.length + f.enabledUserUnits.length + (f.userManager ? 1 : 0) },
    files: { count: f.files.count, status: f.files.status },
    containerList: f.containers.slice(0, 20).map((c) => ({ id: c.id, image: c.image, ownerUid: c.ownerUid, attributed: c.attributed })),
    notChecked: f.unavailable,
    sample: [
      ...f.gpuProcesses.map((g) => `gpu ${g.pid} ${g.name}`),
      ...f.processes.map((p) => `${p.pid} ${p.comm}`),
      ...f.containers.filter((c) => c.attributed).map((c) => `container ${c.id} ${c.image}`),
    ].slice(0, 20),
  };
}

/**
 * The tenant on a Linux host: processes (also re-parented ones), GPU apps, containers, sessions,
 * systemd user units and lingering, `at` jobs, crontab, files of the uid — by the recorded uid once
 * the name is gone (linux.tenantFootprint).
 */
export function linuxTenantOps(ssh: LinuxExecutor, hostId: string): TenantOps {
  const run = (cmd: string, stdin?: string, timeoutMs = 60_000) => ssh.exec(hostId, cmd, { timeoutMs, stdin });
  const uidOf = (t: Tenant) => (t.identity !== null && /^\d+$/.test(t.identity) ? Number(t.identity) : undefined);
  const raw = async (t: Tenant, files: 'outside-home-tmp' | 'everywhere' | 'none') => {
    const cmd = linux.tenantFootprint({ username: t.username, uid: uidOf(t), allocationId: t.allocationId, files });
    return linux.parseTenantFootprint(check(await run(cmd, undefined, 90_000), `footprint of ${t.username}`).stdout);
  };
  const footprint: TenantOps['footprint'] = async (t, files) => {
    const f = await raw(t, files);
    return { report: reportOf(f), identity: f.userExists && f.uid !== null ? String(f.uid) : null };
  };
  const accounts = linuxAccountOps(ssh, hostId);
  return {
    footprint,
    async stop(t, termWaitMs) {
      const signalled: string[] = [];
      let report = (await footprint(t, 'none')).report;
      const uid = report.uid ?? uidOf(t) ?? undefined;
      if (!report.userExists && uid === undefined) return { signalled, remaining: report };
      if (report.userExists && (report.processes || report.sshConnections)) {
        check(await run(linux.killUserProcesses(t.username, 'TERM')), `SIGTERM processes of ${t.username}`);
        signalled.push('TERM');
        const until = Date.now() + termWaitMs;
        while (Date.now() < until) {
          heartbeat({ waiting: 'TERM' });
          await sleep(500);
          report = (await footprint(t, 'none')).report;
          if (!report.processes) break;
        }
      }
      heartbeat({ ending: 'everything of the uid' });
      const r = check(await run(linux.endTenantActivity({ username: t.username, uid: uid ?? undefined, allocationId: t.allocationId }), undefined, 120_000), `end everything of ${t.username}`);
      const m = linux.parseMarkers(r.stdout);
      const ended = {
        crontabRemoved: m.some((x) => x.marker === 'CRONTAB_REMOVED'),
        atJobsRemoved: m.filter((x) => x.marker === 'AT_REMOVED').length,
        lingerRemoved: m.some((x) => x.marker === 'LINGER_REMOVED'),
        userManagerTerminated: m.some((x) => x.marker === 'USER_TERMINATED'),
        containersRemoved: m.filter((x) => x.marker === 'CONTAINER_REMOVED').length,
        killRounds: Number(m.find((x) => x.marker === 'KILL_ROUNDS')?.value ?? 0),
        systemd: !m.some((x) => x.marker === 'NO_SYSTEMD'),
      };
      if (ended.killRounds) signalled.push('KILL');
      report = (await footprint(t, 'none')).report;
      if (report.processes || report.sshConnections || report.gpuProcesses) {
        throw ApplicationFailure.retryable(`${report.processes + report.sshConnections} process(es) of ${t.username} survived SIGKILL`, 'TasksStillRunning');
      }
      return { signalled, ended, remaining: report };
    },
    async endAll(t) {
      check(await run(linux.endTenantActivity({ username: t.username, uid: uidOf(t), allocationId: t.allocationId }), undefined, 120_000), `end everything of ${t.username}`);
      check(await run(linux.cleanupUserLeftovers(t.username)), `clean leftovers of ${t.username}`);
    },
    async cleanLeftovers(t) {
      heartbeat({ cleaning: 'tmp' });
      const r = check(await run(linux.cleanupUserLeftovers(t.username), undefined, 300_000), `clean leftovers of ${t.username}`);
      const m = linux.parseMarkers(r.stdout);
      const uid = (await raw(t, 'none')).uid;
      let otherFilesRemoved = 0;
      let timedOut = false;
      if (uid !== null) {
        heartbeat({ cleaning: 'files of the uid' });
        const f = linux.parseMarkers(check(await run(linux.removeTenantFiles({ username: t.username, uid }), undefined, 90_000), `remove files of ${t.username}`).stdout);
        otherFilesRemoved = Number(f.find((x) => x.marker === 'FILES_REMOVED')?.value ?? 0);
        timedOut = f.some((x) => x.marker === 'FILES_TIMED_OUT');
      }
      return {
        crontabRemoved: m.some((x) => x.marker === 'CRONTAB_REMOVED'),
        tmpFilesRemoved: Number(m.find((x) => x.marker === 'TMP_REMOVED')?.value ?? 0),
        otherFilesRemoved,
        timedOut,
      };
    },
    async leftovers(t) {
      const f = await raw(t, 'everywhere');
      let left = linux.footprintLeftovers(f);
      if (f.uid === null && !f.userExists && (await accounts.readMarker(t.username)) !== null) left = { ...left, marker: 1 };
      // A uid handed to another account since is not looked at by uid: say so rather than imply it was.
      const notChecked = [...f.unavailable, ...(f.uidReassigned ? ['uid (reassigned to another account)'] : [])];
      return { left, notChecked, filesScan: f.files.status };
    },
  };
}

export function linuxHostOps(ssh: LinuxExecutor, hostId: string): HostOps {
  return { os: 'linux', accounts: linuxAccountOps(ssh, hostId), keys: linuxKeyOps(ssh, hostId), tenant: linuxTenantOps(ssh, hostId) };
}
