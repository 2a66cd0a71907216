// The allocation and reclaim plan previews against a real API + PostgreSQL (no worker: the plan
// runs nothing): the builders in the workflows' step order, secrets and run-time keys as
// placeholders, the hashes of what is fixed, nothing written, and 404 across tenants.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { AllocationSchema, CustomerSchema, HostAccountSchema, HostSchema, SshKeySchema, TerminalKeySchema, UserSchema, VncServiceSchema } from '../../db/entities/index.js';
import * as linux from '../../activities/remote/linux.js';
import * as vnc from '../../activities/remote/vnc.js';

describe('allocation plan previews', () => {
  let p: TestPlatform;
  const id: Record<string, string> = {};
  const t: Record<string, string> = {};
  const pub = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'plan-customer' }).public.trim();

  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
    const em = p.db.em.fork();
    const A = em.create(CustomerSchema, { name: 'Plan A', code: 'plan-a', contactEmail: 'a@plan.test', contactPhone: '13812341234' });
    const B = em.create(CustomerSchema, { name: 'Plan B', code: 'plan-b', contactEmail: 'b@plan.test', contactPhone: '13912345678' });
    await em.flush();
    const mA = em.create(UserSchema, { username: 'plan_member_a', email: 'ma@plan.test', roles: ['customer_member'], customerId: A.id, fullName: 'Member A' });
    const mB = em.create(UserSchema, { username: 'plan_member_b', email: 'mb@plan.test', roles: ['customer_member'], customerId: B.id });
    const h = em.create(HostSchema, { slug: 'plan-alloc', name: 'plan-alloc', address: '127.0.0.1', port: 22, os: 'linux', username: 'u', status: 'online' });
    const a = em.create(AllocationSchema, { host: h, customer: A.id, customerUser: mA, osUsername: 'tenant1', startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    em.create(SshKeySchema, { user: mA, type: 'ssh-ed25519', bits: 256, publicKey: pub, fingerprint: 'SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' });
    em.create(SshKeySchema, { user: mA, type: 'ssh-ed25519', bits: 256, publicKey: 'ssh-ed25519 AAAAold', fingerprint: 'SHA256:rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr', revokedAt: new Date() });
    await em.flush();
    Object.assign(id, { a: a.id, h: h.id });
    t.a = await p.tokenFor(mA.id);
    t.b = await p.tokenFor(mB.id);
  }, 120_000);
  afterAll(() => p?.close());

  it('provisioning plan: clean-previous … verify-login builders in order, password and throwaway key as placeholders, hashes of the fixed commands; nothing written; 404 for another tenant', async () => {
    const res = await p.api('GET', `/api/v1/allocations/${id.a}/plan`, { token: p.tokens.operator });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const plan = res.body.data;
    expect(plan).toMatchObject({ allocation_id: id.a, status: 'active', os_username: 'tenant1', host: { id: id.h, slug: 'plan-alloc' } });
    expect(plan.commands.map((c: { step: string; builder: string }) => `${c.step}:${c.builder}`)).toEqual([
      'create-account:hostflow-user-exists', 'create-account:hostflow-create-user', 'create-account:hostflow-set-password', 'create-account:hostflow-user-uid',
      'inject-keys:hostflow-add-authorized-keys',
      'verify-login:hostflow-add-authorized-keys', 'verify-login:hostflow-remove-authorized-keys', 'verify-login:hostflow-list-authorized-keys',
    ]);
    const byBuilder = (b: string) => plan.commands.filter((c: { builder: string }) => c.builder === b);
    expect(byBuilder('hostflow-set-password')[0].stdin).toBe('tenant1:<generated password, 20 chars>\n');
    const inject = byBuilder('hostflow-add-authorized-keys')[0];
    expect(inject.stdin).toContain(pub);
    expect(inject.stdin).not.toContain('AAAAold'); // a revoked key never goes on
    expect(inject.stdin).toContain('<web terminal key, generated at provisioning>');
    expect(byBuilder('hostflow-add-authorized-keys')[1].stdin).toContain('<throwaway ed25519 verification key, generated at run time>');
    // the fixed commands carry the hash the audit records; the exact builder output
    const uidCmd = byBuilder('hostflow-user-uid')[0];
    expect(uidCmd.command).toBe(linux.userUid('tenant1'));
    expect(uidCmd.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(byBuilder('hostflow-create-user')[0].command).toBe(linux.createUser({ username: 'tenant1', fullName: 'Member A', markerRef: `allocation/${id.a}` }));
    // the customer member sees their own allocation's plan; another tenant gets 404; nothing was written
    expect((await p.api('GET', `/api/v1/allocations/${id.a}/plan`, { token: t.a })).status).toBe(200);
    const other = await p.api('GET', `/api/v1/allocations/${id.a}/plan`, { token: t.b });
    expect(other.status).toBe(404);
    const em = p.db.em.fork();
    expect(await em.count(TerminalKeySchema, { allocationId: id.a })).toBe(0);
    expect(await em.count(HostAccountSchema, { host: id.h })).toBe(0);
  });

  it('reclaim plan: every reclaim step in order with the recorded uid; revoked keys removed too; 404 for another tenant', async () => {
    const em = p.db.em.fork();
    em.create(HostAccountSchema, { host: id.h!, username: 'tenant1', origin: 'platform-created', status: 'active', groups: [], createdFromAllocationId: id.a, secretVersion: 1, uid: 4321 });
    await em.flush();
    const res = await p.api('GET', `/api/v1/allocations/${id.a}/reclaim-plan`, { token: p.tokens.operator });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const plan = res.body.data;
    expect(plan.commands.map((c: { step: string; builder: string }) => `${c.step}:${c.builder}`)).toEqual([
      'check-tasks:hostflow-tenant-footprint',
      'revoke-keys:hostflow-user-exists', 'revoke-keys:hostflow-read-marker', 'revoke-keys:hostflow-remove-authorized-keys',
      'lock-account:hostflow-user-exists', 'lock-account:hostflow-read-marker', 'lock-account:hostflow-lock-user',
      'stop-tasks:hostflow-tenant-footprint', 'stop-tasks:hostflow-end-tenant-activity', 'stop-tasks:hostflow-tenant-footprint',
      'clean-leftovers:hostflow-user-exists', 'clean-leftovers:hostflow-read-marker', 'clean-leftovers:hostflow-cleanup-user-leftovers', 'clean-leftovers:hostflow-tenant-footprint', 'clean-leftovers:hostflow-remove-tenant-files',
      'delete-account:hostflow-user-exists', 'delete-account:hostflow-read-marker', 'delete-account:hostflow-kill-user-processes', 'delete-account:hostflow-delete-user',
      'verify-clean:hostflow-tenant-footprint',
    ]);
    const revoke = plan.commands.find((c: { builder: string }) => c.builder === 'hostflow-remove-authorized-keys');
    expect(revoke.stdin).toContain('SHA256:rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr');
    expect(revoke.stdin).toContain('SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    expect(plan.commands.find((c: { builder: string }) => c.builder === 'hostflow-remove-tenant-files').command).toBe(linux.removeTenantFiles({ username: 'tenant1', uid: 4321 }));
    expect(plan.commands.every((c: { sha256: string | null }) => typeof c.sha256 === 'string')).toBe(true);
    expect((await p.api('GET', `/api/v1/allocations/${id.a}/reclaim-plan`, { token: t.b })).status).toBe(404);
  });
  it('an allocation with VNC: provisioning ends with deploy-vnc (hostflow-vnc-deploy, the password file as a stdin placeholder), reclaim starts with stop-vnc (hostflow-vnc-remove); without VNC neither appears', async () => {
    const em = p.db.em.fork();
    em.create(VncServiceSchema, { allocationId: id.a!, hostId: id.h!, osUsername: 'tenant1', status: 'requested' });
    await em.flush();
    try {
      const res = await p.api('GET', `/api/v1/allocations/${id.a}/plan`, { token: p.tokens.operator });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const cmds = res.body.data.commands as Array<{ step: string; builder: string; change: boolean; command: string; stdin: string | null; sha256: string | null }>;
      const last = cmds.at(-1)!;
      expect(`${last.step}:${last.builder}`).toBe('deploy-vnc:hostflow-vnc-deploy');
      expect(last.change).toBe(true);
      // The very builder the activity calls (its script does not depend on the password), so its hash is the audit's.
      expect(last.command).toBe(vnc.deployVnc('tenant1', vnc.vncPasswordFile('abcdefgh')).script);
      expect(last.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(last.stdin).toBe('<VNC password file (vncpasswd format, base64), generated at deploy>\n');
      expect(res.body.data.notes.join(' ')).toContain('deploy-vnc');
      const rec = await p.api('GET', `/api/v1/allocations/${id.a}/reclaim-plan`, { token: p.tokens.operator });
      expect(rec.status, JSON.stringify(rec.body)).toBe(200);
      const first = rec.body.data.commands[0];
      expect(`${first.step}:${first.builder}`).toBe('stop-vnc:hostflow-vnc-remove');
      expect(first.command).toBe(vnc.removeVnc('tenant1'));
      expect(rec.body.data.commands.filter((c: { step: string }) => c.step === 'stop-vnc')).toHaveLength(1);
      // A removed service (after reclaim's stop-vnc) is no longer planned.
      await p.db.em.fork().nativeUpdate(VncServiceSchema, { allocationId: id.a! }, { status: 'removed' });
      const after = await p.api('GET', `/api/v1/allocations/${id.a}/reclaim-plan`, { token: p.tokens.operator });
      expect(after.body.data.commands.some((c: { step: string }) => c.step === 'stop-vnc')).toBe(false);
      const prov = await p.api('GET', `/api/v1/allocations/${id.a}/plan`, { token: p.tokens.operator });
      expect(prov.body.data.commands.some((c: { step: string }) => c.step === 'deploy-vnc')).toBe(false);
    } finally {
      await p.db.em.fork().nativeDelete(VncServiceSchema, { allocationId: id.a! });
    }
  });
});
