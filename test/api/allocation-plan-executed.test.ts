// The allocation and reclaim plans the console shows, compared with what the workflows then ran on
// a real sshd host (real Temporal worker, real platform): every host-changing command of the plan,
// in order, names the same builder and has the same SHA-256 as the command record the executor
// wrote for `allocation/<id>` and `reclaim/<id>` (command_records: builder + command_sha256, in
// the order they ran). Only the placeholders differ, and they sit in stdin, which is not hashed.
// The allocation asks for VNC auto-deployment, so the plans also carry deploy-vnc (provisioning's
// last step: Xvnc really starts as the tenant on this machine) and stop-vnc (reclaim's first); the
// other steps are the same builders with or without VNC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { CommandRecordSchema } from '../../db/entities/index.js';

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

type Planned = { step: string; builder: string; change: boolean; command: string; stdin: string | null; sha256: string | null };

describe('allocation and reclaim plans equal what ran', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let username = '';
  let allocationId = '';
  let token = '';
  // useradd hands out the highest uid + 1: a guard account above the tenant keeps its uid unused
  // by other test files while reclaim checks the host by uid (as in test/workflows/reclaim.test.ts).
  const guard = `hfg${randomBytes(3).toString('hex')}`;
  const key = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'plan-run@laptop' });

  const executed = async (workflowId: string) =>
    (await p.db.em.fork().find(CommandRecordSchema, { workflowId }, { orderBy: { startedAt: 'asc', id: 'asc' } })).map((r) => ({ builder: r.builder, sha256: r.commandSha256, exit: r.exitCode }));
  const changes = (plan: { commands: Planned[] }) => plan.commands.filter((c) => c.change).map((c) => ({ builder: c.builder, sha256: c.sha256 }));

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'plan-run-1', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${h.body.data.id}/status`, { body: { status } })).status).toBe(200);
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Plan Run Co', code: `pr${randomBytes(3).toString('hex')}`, contact_email: 'ops@planrun.test' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    username = `pr${randomBytes(3).toString('hex')}`;
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username, email: `${username}@planrun.test`, full_name: 'Plan Run' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    token = await p.tokenFor(u.body.data.id as string);
    expect((await p.api('POST', '/api/v1/ssh-keys', { token, body: { public_key: key.public } })).status).toBe(201);
    // Starts in a few seconds: the plan is read while the allocation waits, as an operator reads it.
    const a = await p.api('POST', '/api/v1/allocations', {
      body: { host_id: h.body.data.id, customer_id: c.body.data.id, customer_user_id: u.body.data.id, starts_at: new Date(Date.now() + 6_000).toISOString(), ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString(), vnc: true },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    allocationId = a.body.data.id;
  }, 180_000);

  afterAll(async () => {
    if (sshd && username) {
      await sshExec(sshd, `sudo -n pkill -KILL -u ${username}; sudo -n userdel -r -f ${username}; sudo -n rm -f /var/lib/hostflow/accounts/${username}`).catch(() => undefined);
      await sshExec(sshd, `sudo -n userdel ${guard}`).catch(() => undefined);
    }
    await p?.close();
    await sshd?.stop();
  });

  it('provisioning: the plan read before it starts = the commands allocation/<id> ran (builder and SHA-256, in order); the password and keys only as stdin placeholders', { timeout: 150_000 }, async () => {
    const res = await p.api('GET', `/api/v1/allocations/${allocationId}/plan`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data.status).toBe('pending');
    const plan = res.body.data as { commands: Planned[] };
    expect(JSON.stringify(plan)).toContain('<generated password, 20 chars>');
    expect(JSON.stringify(plan)).toContain('<throwaway ed25519 verification key, generated at run time>');
    expect(JSON.stringify(plan)).toContain('<VNC password file (vncpasswd format, base64), generated at deploy>');
    expect(await executed(`allocation/${allocationId}`)).toEqual([]);

    await until('allocation active', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (r.status === 'failed') throw new Error(`allocation failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'active';
    });
    const ran = await executed(`allocation/${allocationId}`);
    expect(ran.every((r) => r.exit === 0), JSON.stringify(ran)).toBe(true);
    const planned = changes(plan);
    expect(planned.map((c) => c.builder)).toEqual(['hostflow-create-user', 'hostflow-set-password', 'hostflow-add-authorized-keys', 'hostflow-add-authorized-keys', 'hostflow-remove-authorized-keys', 'hostflow-vnc-deploy']);
    expect(planned.every((c) => typeof c.sha256 === 'string')).toBe(true);
    expect(ran.map(({ builder, sha256 }) => ({ builder, sha256 }))).toEqual(planned);
    // the placeholder stood for the real password, which the plan never carried
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    expect(rev.body.data.password).toHaveLength(20);
    expect(JSON.stringify(plan)).not.toContain(rev.body.data.password);
    // deploy-vnc really started the tenant's Xvnc; its password was never in the plan either.
    const vnc = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`, { token });
    expect(vnc.status, JSON.stringify(vnc.body)).toBe(200);
    expect(JSON.stringify(plan)).not.toContain(vnc.body.data.password);
    expect((await sshExec(sshd, `pgrep -u ${username} -x Xvnc >/dev/null && echo up || echo down`)).stdout.trim()).toBe('up');
  });

  it('reclaim: the plan read while the lease runs = the commands reclaim/<id> ran (builder and SHA-256, in order)', { timeout: 150_000 }, async () => {
    expect((await sshExec(sshd, `for i in 1 2 3 4 5; do u=$(( $(getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 { print $3 }' | sort -n | tail -1) + 1 )); sudo -n useradd -M -u $u ${guard} 2>/dev/null && echo ok && break; done`)).stdout.trim()).toBe('ok');
    const res = await p.api('GET', `/api/v1/allocations/${allocationId}/reclaim-plan`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const plan = res.body.data as { commands: Planned[] };
    // the uid provisioning recorded is in the plan: no placeholder left in any command
    expect(plan.commands.every((c) => typeof c.sha256 === 'string')).toBe(true);
    const ret = await p.api('POST', `/api/v1/allocations/${allocationId}/return`, { token, body: { mode: 'reclaim' } });
    expect(ret.status, JSON.stringify(ret.body)).toBe(200);
    await until('reclaimed', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (r.status === 'reclaim-failed') throw new Error(`reclaim failed: ${r.error}`);
      return r.status === 'reclaimed';
    });
    const ran = await executed(`reclaim/${allocationId}`);
    const planned = changes(plan);
    expect(planned.map((c) => c.builder)).toEqual([
      'hostflow-vnc-remove', 'hostflow-remove-authorized-keys', 'hostflow-lock-user', 'hostflow-end-tenant-activity', 'hostflow-cleanup-user-leftovers', 'hostflow-remove-tenant-files', 'hostflow-kill-user-processes', 'hostflow-delete-user',
    ]);
    expect(ran.map(({ builder, sha256 }) => ({ builder, sha256 }))).toEqual(planned);
    expect((await sshExec(sshd, `id -u ${username} >/dev/null 2>&1 && echo present || echo absent`)).stdout.trim()).toBe('absent');
  });
});
