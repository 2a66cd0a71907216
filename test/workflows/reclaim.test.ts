import { loginAs } from '../helpers/ssh-login.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { utils as ssh2Utils } from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { startSmtp } from '../helpers/smtp.js';
import { createActivities } from '../../activities/index.js';
import { createLogger } from '../../config/logger.js';
import type { TaskReport } from '../../activities/remote/allocation.activities.js';
import { until } from '../helpers/until.js';

/**
 * Reclaim really ends a tenant's access, on a real sshd host (this machine, through a dedicated
 * sshd on loopback): the tenant leaves a respawning nohup loop, a crontab entry, an `at` job, a
 * lingering user service, a GPU compute app (the nvidia-smi fixture reports it) and files outside
 * home and tmp. Keys and login are gone before tasks are stopped; afterwards nothing of the uid
 * runs or is scheduled, and a re-run is a no-op.
 *
 * What this machine cannot run, and so is not exercised here (the test asserts that the reclaim
 * reports it as not checked rather than skipping it silently): systemd/logind (no systemd as PID 1:
 * `loginctl terminate-user`, `systemctl --user` units, `loginctl enable-linger` cannot run; the
 * lingering service is set up the way logind stores it — /var/lib/systemd/linger/<user> and an
 * enabled unit in ~/.config/systemd/user — which is what the check sees and reclaim removes), and
 * a docker daemon (the docker CLI is installed but no daemon answers: reported as
 * `docker daemon`; container attribution is covered by the builder tests only). atd and cron do
 * not run either: `at` still queues the job in the spool and `crontab` installs the file, which is
 * what reclaim must find and remove.
 */

const systemd = existsSync('/run/systemd/system');

// A customer's own login (key or password), through the shared helper.
const login = (h: SshTestHost, auth: { username: string; privateKey?: string; password?: string }, command: string): Promise<string> =>
  loginAs(h, auth.username, auth.privateKey ? { privateKey: auth.privateKey } : { password: auth.password ?? '' }, command);

type Step = { phase: string; step: string; status: string; detail?: Record<string, unknown>; error?: string };

describe('reclaim ends everything of the tenant on a real sshd host', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let gpuBin = '';
  let hostId = '';
  let allocationId = '';
  let username = '';
  let uid = 0;
  let password = '';
  let token = '';
  // useradd hands out the highest uid + 1, so deleting the tenant (the newest account) would free its
  // uid for the accounts other test files create meanwhile. A guard account above it keeps it unused.
  const guard = `hfg${randomBytes(3).toString('hex')}`;
  const key = ssh2Utils.generateKeyPairSync('ed25519', { comment: 'tenant@laptop' });
  const dataDir = `/srv/hostflow-test-${randomBytes(3).toString('hex')}`;

  const steps = async (): Promise<Step[]> =>
    ((await p.api('GET', `/api/v1/allocations/${allocationId}/progress`)).body.data.steps as Step[]).filter((s) => s.phase === 'reclaim');
  const explain = async () => ({ row: (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data, steps: await steps().catch(() => null) });
  const ofUid = async () => (await sshExec(sshd, `ps -e -o pid=,uid=,ruid=,stat=,args= | awk -v u=${uid} '$4 !~ /^Z/ && ($2 == u || $3 == u)'`)).stdout.trim();

  beforeAll(async () => {
    // The GPU fixture, linked into a directory of this test, where it finds the compute apps to report.
    gpuBin = await mkdtemp(join(tmpdir(), 'hostflow-gpu-'));
    await chmod(gpuBin, 0o755);
    await symlink(fileURLToPath(new URL('../fixtures/bin/nvidia-smi', import.meta.url)), join(gpuBin, 'nvidia-smi'));
    await writeFile(join(gpuBin, 'compute-apps'), '', { mode: 0o644 });
    smtp = await startSmtp();
    [p, sshd] = await Promise.all([
      startTestPlatform({ db: 'pglite', smtpUrl: smtp.url }),
      startSshd({ extraConfig: `SetEnv PATH=${gpuBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` }),
    ]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'gpu-reclaim-1', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Tenant Co', code: `t${randomBytes(3).toString('hex')}`, contact_email: 'ops@tenant.test' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    username = `rt${randomBytes(3).toString('hex')}`;
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username, email: `${username}@tenant.test`, full_name: 'Tenant User' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    token = await p.tokenFor(u.body.data.id as string);
    expect((await p.api('POST', '/api/v1/ssh-keys', { token, body: { public_key: key.public } })).status).toBe(201);
    const a = await p.api('POST', '/api/v1/allocations', {
      body: { host_id: hostId, customer_id: c.body.data.id, customer_user_id: u.body.data.id, ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString(), grace_minutes: 60 },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    allocationId = a.body.data.id;
    await until('allocation active', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (r.status === 'failed') throw new Error(`allocation failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'active';
    });
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    password = rev.body.data.password;
    uid = Number(await login(sshd, { username, privateKey: key.private }, 'id -u'));
    expect(uid).toBeGreaterThanOrEqual(1000);
    expect((await sshExec(sshd, `for i in 1 2 3 4 5; do u=$(( $(getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 { print $3 }' | sort -n | tail -1) + 1 )); sudo -n useradd -M -u $u ${guard} 2>/dev/null && echo ok && break; done`)).stdout.trim()).toBe('ok');
    expect(await login(sshd, { username, password }, 'id -un')).toBe(username);
  }, 180_000);

  afterAll(async () => {
    if (sshd && username) {
      await sshExec(sshd, `sudo -n pkill -KILL -u ${username}; sudo -n userdel -r -f ${username}; sudo -n rm -rf ${dataDir} /var/lib/hostflow/accounts/${username} /var/lib/systemd/linger/${username}`).catch(() => undefined);
      await sshExec(sshd, `sudo -n userdel ${guard}`).catch(() => undefined);
    }
    await p?.close();
    await sshd?.stop();
    await smtp?.stop();
    if (gpuBin) await rm(gpuBin, { recursive: true, force: true });
  });

  it('the tenant leaves a respawning nohup loop, a crontab entry, an at job, a lingering user service, a GPU app and files outside home and tmp', { timeout: 60_000 }, async () => {
    const t = (cmd: string) => login(sshd, { username, privateKey: key.private }, cmd);
    // A loop that ignores SIGTERM/SIGHUP, re-parented to init (setsid + nohup), forking a new worker every 0.2 s.
    await t(`cat > ~/respawn.sh <<'EOF'
trap '' TERM HUP INT
while :; do sleep 1000 & sleep 0.2; done
EOF
setsid nohup sh ~/respawn.sh >/dev/null 2>&1 < /dev/null & echo started`);
    await t(`echo '* * * * * sleep 777' | crontab - && crontab -l`);
    await t(`echo 'sleep 888' | at now + 2 hours 2>&1`);
    // The GPU app: a long process of the tenant that the nvidia-smi fixture reports as a compute app.
    const gpuPid = Number(await t('setsid nohup sleep 2000 >/dev/null 2>&1 < /dev/null & echo $!'));
    await writeFile(join(gpuBin, 'compute-apps'), `${gpuPid}, /usr/bin/python3\n`);
    // A lingering user service.
    await t(`mkdir -p ~/.config/systemd/user/default.target.wants && printf '[Service]\\nExecStart=/bin/sleep 999\\n' > ~/.config/systemd/user/train.service && ln -sf ../train.service ~/.config/systemd/user/default.target.wants/train.service`);
    if (systemd) {
      await sshExec(sshd, `sudo -n loginctl enable-linger ${username}`);
    } else {
      // No logind here: store the linger flag where logind keeps it.
      await sshExec(sshd, `sudo -n mkdir -p /var/lib/systemd/linger && sudo -n touch /var/lib/systemd/linger/${username}`);
    }
    // Files outside home and tmp: a data directory the tenant was given.
    await sshExec(sshd, `sudo -n mkdir -p ${dataDir} && sudo -n chown ${username} ${dataDir}`);
    await t(`echo weights > ${dataDir}/model.bin && mkdir ${dataDir}/ckpt && echo 1 > ${dataDir}/ckpt/step-1`);

    expect(await ofUid()).toMatch(/sh .*respawn\.sh/);
    expect((await sshExec(sshd, `sudo -n atq | awk '$NF == "${username}"'`)).stdout.trim()).not.toBe('');
    expect((await sshExec(sshd, `sudo -n crontab -l -u ${username}`)).stdout).toContain('sleep 777');
    expect((await sshExec(sshd, 'nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader')).stdout.trim()).toBe(`${gpuPid}, /usr/bin/python3`);
  });

  it('keys and login are gone before tasks are stopped; the check reports every category (and what this host cannot be asked)', { timeout: 120_000 }, async () => {
    const ret = await p.api('POST', `/api/v1/allocations/${allocationId}/return`, { token, body: { mode: 'reclaim' } });
    expect(ret.status, JSON.stringify(ret.body)).toBe(200);
    const waiting = await until('stop-tasks waiting for the grace period', async () => {
      const s = await steps();
      return s.find((x) => x.step === 'stop-tasks')?.status === 'waiting' ? s : null;
    }, 90_000, explain);
    expect(waiting.map((s) => `${s.step}:${s.status}`).slice(0, 4)).toEqual(['check-tasks:done', 'revoke-keys:done', 'lock-account:done', 'stop-tasks:waiting']);

    const check = waiting.find((s) => s.step === 'check-tasks')!.detail as unknown as Required<TaskReport>;
    expect(check.uid).toBe(uid);
    expect(check.processes).toBeGreaterThanOrEqual(2);
    expect(check.gpuProcesses).toBe(1);
    expect(check.sample.join(' ')).toMatch(/gpu \d+ \/usr\/bin\/python3/);
    expect(check.scheduled).toEqual({ atJobs: 1, crontab: 1, linger: true, userUnits: systemd ? expect.any(Number) : 1 });
    // model.bin, ckpt/, ckpt/step-1 and the data directory itself; the crontab and at spool files are the tenant's too.
    expect(check.files.count).toBeGreaterThanOrEqual(4);
    expect(check.files.status).toBe('complete');
    if (!systemd) expect(check.notChecked).toContain('systemd');
    expect(check.notChecked).not.toContain('nvidia-smi');

    // Grace period running, processes alive: but the tenant cannot log in any more, by key or password.
    expect(await ofUid()).not.toBe('');
    await expect(login(sshd, { username, privateKey: key.private }, 'true')).rejects.toThrow();
    await expect(login(sshd, { username, password }, 'true')).rejects.toThrow();
    const shadow = (await sshExec(sshd, `sudo -n getent shadow ${username}`)).stdout.split(':');
    expect(shadow[1]).toMatch(/^!/); // password locked
    expect(shadow[2]).toBe('0'); // password expired
    expect(shadow[7]).toBe('1'); // account expired
  });

  it('forced: nothing of the uid runs or is scheduled, the GPU app is killed, files are gone, verify-clean passes, the host is free', { timeout: 240_000 }, async () => {
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/reclaim/force`)).status).toBe(200);
    await until('reclaimed', async () => {
      const a = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (a.status === 'reclaim-failed') throw new Error(`reclaim failed at ${a.failed_step}: ${a.error}`);
      return a.status === 'reclaimed' && (await steps()).some((s) => s.step === 'release-host' && s.status === 'done');
    }, 200_000, explain);
    const s = await steps();
    expect(s.map((x) => `${x.step}:${x.status}`)).toEqual([
      'check-tasks:done',
      'revoke-keys:done',
      'lock-account:done',
      'stop-tasks:done',
      'clean-leftovers:done',
      'delete-account:done',
      'restore-template:skipped',
      'verify-clean:done',
      'release-host:done',
    ]);
    const stop = s.find((x) => x.step === 'stop-tasks')!.detail as unknown as { ended: { killRounds: number }; remaining: TaskReport };
    expect(stop.ended).toMatchObject({ crontabRemoved: true, atJobsRemoved: 1, lingerRemoved: true, systemd });
    expect(stop.ended.killRounds).toBeGreaterThanOrEqual(1);
    expect(stop.remaining).toMatchObject({ processes: 0, gpuProcesses: 0, sshConnections: 0 });

    // Nothing of the uid runs (a few seconds later too: the loop did not respawn) or is scheduled.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await ofUid()).toBe('');
    expect((await sshExec(sshd, 'nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader')).stdout.trim()).toBe('');
    expect((await sshExec(sshd, `sudo -n atq | awk '$NF == "${username}" || $NF == "???"'; sudo -n find /var/spool/cron -uid ${uid}`)).stdout.trim()).toBe('');
    expect((await sshExec(sshd, `ls /var/spool/cron/crontabs/${username} /var/lib/systemd/linger/${username} 2>/dev/null || echo none`)).stdout.trim()).toBe('none');
    expect((await sshExec(sshd, `ls -A ${dataDir} 2>/dev/null || echo none`)).stdout.trim()).toBe('none');
    expect((await sshExec(sshd, `getent passwd ${username} || echo gone`)).stdout.trim()).toBe('gone');
    expect((await sshExec(sshd, `ls -d /home/${username} 2>/dev/null || echo none`)).stdout.trim()).toBe('none');
    await expect(login(sshd, { username, privateKey: key.private }, 'true')).rejects.toThrow();
    await expect(login(sshd, { username, password }, 'true')).rejects.toThrow();
    const verify = s.find((x) => x.step === 'verify-clean')!.detail as unknown as { clean: boolean; notChecked: string[]; filesScan: string };
    expect(verify).toMatchObject({ clean: true, filesScan: 'complete' });
    if (!systemd) expect(verify.notChecked).toContain('systemd');
    expect((await p.api('GET', `/api/v1/hosts/${hostId}`)).body.data.status).toBe('online');
  });

  it('a re-run of every reclaim activity is a no-op; verify-clean fails naming what is left (by category and count) when something of the uid reappears', { timeout: 180_000 }, async () => {
    const acts = createActivities({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), ssh: p.ssh, winrm: p.winrm, mailer: null, mailFrom: 'x@test', baseDomain: 'hosts.test' });
    // Other test files create OS users on this same machine meanwhile, and useradd may hand them the
    // freed uid: then the footprint must say so and count nothing of that other account.
    const reassignedTo = (await sshExec(sshd, `getent passwd ${uid} | cut -d: -f1`)).stdout.trim();
    const check = await acts.checkRunningTasks(allocationId);
    if (reassignedTo) {
      expect(reassignedTo).not.toBe(username);
      expect(check).toMatchObject({ userExists: false, uid: null, uidReassigned: { uid, owner: reassignedTo }, processes: 0, gpuProcesses: 0, containers: 0, sessions: 0, scheduled: { atJobs: 0, crontab: 0, linger: false, userUnits: 0 }, files: { count: 0 } });
    } else {
      expect(check).toMatchObject({ userExists: false, uid, processes: 0, gpuProcesses: 0, containers: 0, sessions: 0, scheduled: { atJobs: 0, crontab: 0, linger: false, userUnits: 0 }, files: { count: 0 } });
      expect(check.uidReassigned).toBeUndefined();
    }
    expect(await acts.revokeCustomerKeys(allocationId)).toEqual({ removed: 0, skipped: 'account is gone' });
    expect(await acts.lockCustomerAccount(allocationId)).toEqual({ locked: false });
    const stop = await acts.stopCustomerTasks(allocationId);
    expect(stop.signalled).toEqual([]);
    expect(stop.ended).toMatchObject({ crontabRemoved: false, atJobsRemoved: 0, lingerRemoved: false, containersRemoved: 0, killRounds: 0 });
    expect(await acts.cleanCustomerLeftovers(allocationId)).toEqual({ crontabRemoved: false, tmpFilesRemoved: 0 });
    expect(await acts.deleteCustomerAccount(allocationId)).toEqual({ deleted: false });
    const clean = await acts.verifyReclaimClean(allocationId);
    expect(clean).toMatchObject({ clean: true });
    if (reassignedTo) {
      // Nothing of the uid can be checked as the tenant's any more (and nothing was killed or deleted).
      expect(clean.notChecked).toContain('uid (reassigned to another account)');
      expect(clean.filesScan).toBe('not-scanned');
      return;
    }

    // Something owned by the uid shows up again (a process and a file): verify-clean names both, non-retryable.
    await sshExec(sshd, `sudo -n mkdir -p ${dataDir} && sudo -n touch ${dataDir}/late && sudo -n chown ${uid} ${dataDir}/late`);
    await sshExec(sshd, `sudo -n setsid -f setpriv --reuid=${uid} --regid=${uid} --clear-groups sleep 300 >/dev/null 2>&1 < /dev/null`);
    let err: unknown;
    try {
      await acts.verifyReclaimClean(allocationId, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ type: 'NotClean', nonRetryable: true });
    expect((err as Error).message).toBe(`gpu-reclaim-1 is not clean of ${username}: processes 1, files 1`);
    await sshExec(sshd, `sudo -n pkill -KILL -u ${uid}; sudo -n rm -rf ${dataDir}`);

    // useradd hands a freed uid out again: an account created now with the tenant's old uid, with a
    // process and a file of its own, is reported as such; nothing of it counts, is stopped or deleted.
    const other = `hfr${randomBytes(3).toString('hex')}`;
    expect((await sshExec(sshd, `sudo -n useradd -M -u ${uid} ${other} && echo ok`)).stdout.trim()).toBe('ok');
    try {
      await sshExec(sshd, `sudo -n mkdir -p ${dataDir} && sudo -n touch ${dataDir}/theirs && sudo -n chown ${uid} ${dataDir}/theirs`);
      await sshExec(sshd, `sudo -n setsid -f setpriv --reuid=${uid} --regid=${uid} --clear-groups sleep 307 >/dev/null 2>&1 < /dev/null`);
      const theirs = `ps -o args= -u ${uid} | grep -cx 'sleep 307'`;
      expect((await sshExec(sshd, theirs)).stdout.trim()).toBe('1');
      expect(await acts.checkRunningTasks(allocationId)).toMatchObject({ userExists: false, uid: null, uidReassigned: { uid, owner: other }, processes: 0, files: { count: 0 } });
      const stopOther = await acts.stopCustomerTasks(allocationId);
      expect(stopOther.signalled).toEqual([]);
      expect(stopOther.ended).toMatchObject({ killRounds: 0, atJobsRemoved: 0, containersRemoved: 0 });
      const v = await acts.verifyReclaimClean(allocationId, 1);
      expect(v).toMatchObject({ clean: true, filesScan: 'not-scanned' });
      expect(v.notChecked).toContain('uid (reassigned to another account)');
      expect((await sshExec(sshd, `${theirs}; sudo -n ls ${dataDir}`)).stdout.trim()).toBe('1\ntheirs');
    } finally {
      await sshExec(sshd, `sudo -n pkill -KILL -u ${uid}; sudo -n rm -rf ${dataDir}; sudo -n userdel ${other}`);
    }

    // The replay fixture of a reclaim on the patched path (keys and login first, grace wait, force):
    // CAPTURE_HISTORIES=1 npx vitest run test/workflows/reclaim.test.ts (never overwrites).
    const fixture = fileURLToPath(new URL('../replay/histories/reclaim-lock-first.json', import.meta.url));
    if (process.env.CAPTURE_HISTORIES && !existsSync(fixture)) {
      const { temporalCliPath } = await import('../../scripts/temporal-cli.js');
      const { execFileSync } = await import('node:child_process');
      const { inject } = await import('vitest');
      await writeFile(fixture, execFileSync(temporalCliPath(), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', `reclaim/${allocationId}`, '--output', 'json']));
    }
  });
});
