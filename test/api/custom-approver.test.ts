// A custom role holding account_opening.approve (and not named "approver") decides a real
// request: the API's permission check and the workflow's Update validator both read permissions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { HostSchema, UserSchema } from '../../db/entities/index.js';

describe('custom approver role', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform({ worker: true });
  });
  afterAll(() => p?.close());

  it('approves through the workflow validator; a role without the permission gets 403', async () => {
    const em = p.db.em.fork();
    const host = em.create(HostSchema, { slug: 'ca-host', name: 'ca-host', address: '127.0.0.1', port: 1, os: 'linux', username: 'u', status: 'online' });
    const decider = em.create(UserSchema, { username: 'decider', roles: ['desk-lead'] });
    const nodecider = em.create(UserSchema, { username: 'nodecider', roles: ['desk-reader'] });
    await em.flush();
    const tokens = { decider: await p.tokenFor(decider.id), nodecider: await p.tokenFor(nodecider.id) };
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'desk-lead', permissions: ['account_opening.approve', 'scope.all'] } })).status).toBe(201);
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'desk-reader', permissions: ['account_opening.read', 'scope.all'] } })).status).toBe(201);
    const submit = async (username: string) =>
      (await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: host.id, username, full_name: 'C A', contact_email: 'ca@x.test' } })).body.data.id as string;
    const first = await submit('causer');
    expect((await p.api('POST', `/api/v1/account-openings/${first}/approve`, { token: tokens.nodecider, body: {} })).status).toBe(403);
    const ok = await p.api('POST', `/api/v1/account-openings/${first}/approve`, { token: tokens.decider, body: { notes: 'custom role' } });
    expect([ok.status, ok.body.data?.status]).toEqual([200, 'approved']);
    const hist = await p.client.workflow.getHandle(`account-opening/${first}`).fetchHistory();
    const accepted = hist.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(accepted).toHaveLength(1);
  });
});
