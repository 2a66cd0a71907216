// Row scope on a view whose data lives only in Temporal: the batch onboarding progress
// (GET /hosts/onboard/:batchId) against a real worker and dev server. The batch's hosts come from
// its start input (first history event, decoded through the codec); a caller who cannot see every
// host of the batch gets 404, like an id that never existed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { CustomerSchema, HostGroupSchema, HostSchema, UserSchema } from '../../db/entities/index.js';
import { batchHostIds } from '../../api/routes/onboarding/service.js';

describe('row scope on Temporal-backed views', () => {
  let p: TestPlatform;
  const id: Record<string, string> = {};
  const t: Record<string, string> = {};
  const workflows: string[] = [];

  beforeAll(async () => {
    p = await startTestPlatform({ worker: true });
    const em = p.db.em.fork();
    const east = em.create(HostGroupSchema, { name: 'east' });
    em.create(HostGroupSchema, { name: 'west' });
    const cust = em.create(CustomerSchema, { name: 'Batch Co', code: 'batch-co' });
    // Pending hosts on a closed port without credentials: their onboarding fails fast and touches nothing.
    const host = (slug: string, group: string) => em.create(HostSchema, { slug, name: slug, address: '127.0.0.1', port: 1, os: 'linux', username: 'u', group, status: 'pending' }).id;
    Object.assign(id, { e1: host('bt-e1', 'east'), w1: host('bt-w1', 'west'), e2: host('bt-e2', 'east'), w2: host('bt-w2', 'west'), east: east.id, cust: cust.id });
    await em.flush();
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'east-onboarder', parent: 'operator', host_group_ids: [id.east] } })).status).toBe(201);
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'tenant-watcher', parent: 'customer_owner', permissions: ['onboarding.read'] } })).status).toBe(201);
    const em2 = p.db.em.fork();
    const eastop = em2.create(UserSchema, { username: 'bt_eastop', roles: ['east-onboarder'] }).id;
    const tenant = em2.create(UserSchema, { username: 'bt_tenant', roles: ['tenant-watcher'], customerId: id.cust! }).id;
    await em2.flush();
    t.eastop = await p.tokenFor(eastop);
    t.tenant = await p.tokenFor(tenant);
  });
  afterAll(async () => {
    for (const w of workflows) await p?.client.workflow.getHandle(w).terminate('test over').catch(() => undefined);
    await p?.close();
  });

  it("a batch's progress is visible only to callers who see every host of it", { timeout: 120_000 }, async () => {
    const mixed = await p.api('POST', '/api/v1/hosts/onboard', { body: { host_ids: [id.e1, id.w1], concurrency: 1 } });
    expect(mixed.status, JSON.stringify(mixed.body)).toBe(202);
    workflows.push(mixed.body.data.workflow_id, `host-onboarding/${id.e1}`, `host-onboarding/${id.w1}`);
    // The East operator can start a batch of East hosts only (a West one "does not exist").
    const refused = await p.api('POST', '/api/v1/hosts/onboard', { token: t.eastop, body: { host_ids: [id.e2, id.w2] } });
    expect([refused.status, refused.body.errors?.[0]]).toEqual([400, { field: 'host_ids.1', message: 'host does not exist' }]);
    const eastOnly = await p.api('POST', '/api/v1/hosts/onboard', { token: t.eastop, body: { host_ids: [id.e2] } });
    expect(eastOnly.status, JSON.stringify(eastOnly.body)).toBe(202);
    workflows.push(eastOnly.body.data.workflow_id, `host-onboarding/${id.e2}`);

    // The input as the view reads it: through the client's codec, from the first history event.
    expect((await batchHostIds(p.client, mixed.body.data.workflow_id))?.sort()).toEqual([id.e1, id.w1].sort());
    expect(await batchHostIds(p.client, 'host-onboarding-batch/00000000-0000-4000-8000-000000000000')).toBeNull();

    const view = (batch: string, token?: string) => p.api('GET', `/api/v1/hosts/onboard/${batch}`, token ? { token } : {});
    const admin = await view(mixed.body.data.batch_id);
    expect([admin.status, admin.body.data?.total]).toEqual([200, 2]);
    const hidden = await view(mixed.body.data.batch_id, t.eastop);
    expect([hidden.status, hidden.body.message]).toEqual([404, 'batch not found']);
    const own = await view(eastOnly.body.data.batch_id, t.eastop);
    expect([own.status, own.body.data?.total]).toEqual([200, 1]);
    // A tenant holding onboarding.read sees no batch of hosts it does not hold; an unknown id reads the same.
    expect((await view(eastOnly.body.data.batch_id, t.tenant)).body.message).toBe('batch not found');
    const ghost = await view('00000000-0000-4000-8000-000000000000', t.eastop);
    expect([ghost.status, ghost.body.message]).toEqual([404, 'batch not found']);
  });
});
