import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { AuditEventSchema } from '../../db/entities/index.js';

describe('hosts API: WinRM auth settings (issue 18)', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
  });
  afterAll(() => p?.close());

  it('a Windows host defaults to negotiate with Basic over HTTP refused; enabling it is audited with before/after', async () => {
    const created = await p.api('POST', '/api/v1/hosts', {
      body: { name: 'win api 1', address: '10.9.8.7', port: 3389, os: 'windows', username: 'CORP\\svc', password: 'pw', winrm_https: false },
    });
    expect(created.status).toBe(201);
    const host = created.body.data as { id: string; winrm: { auth: string; https: boolean; allow_unencrypted_basic: boolean } };
    expect(host.winrm).toEqual({ auth: 'negotiate', https: false, port: null, allow_unencrypted_basic: false });

    const bad = await p.api('PATCH', `/api/v1/hosts/${host.id}`, { body: { winrm_auth: 'digest' } });
    expect([bad.status, bad.body.code, bad.body.errors?.[0]?.field]).toEqual([400, 40001, 'winrm_auth']);

    const patched = await p.api('PATCH', `/api/v1/hosts/${host.id}`, { body: { winrm_auth: 'basic', winrm_allow_unencrypted_basic: true } });
    expect(patched.status).toBe(200);
    expect((patched.body.data as typeof host).winrm).toMatchObject({ auth: 'basic', allow_unencrypted_basic: true });
    const events = await p.db.em.fork().find(AuditEventSchema, { action: 'host.update', targetId: host.id });
    expect(events).toHaveLength(1);
    expect(events[0]!.detail).toMatchObject({
      before: { winrm_auth: 'negotiate', winrm_allow_unencrypted_basic: false },
      after: { winrm_auth: 'basic', winrm_allow_unencrypted_basic: true },
    });
  });
});
