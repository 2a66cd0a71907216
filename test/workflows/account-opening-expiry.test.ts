import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { createTransport } from 'nodemailer';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { startSmtp } from '../helpers/smtp.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { HostSchema, NotificationSchema, UserSchema, AccountOpeningRequestSchema } from '../../db/entities/index.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { createApp } from '../../api/app.js';
import { createApiKey } from '../../api/routes/api-keys/service.js';
import { testDataConverter } from '../helpers/temporal.js';

describe('account opening decision timeout (time-skipping test server)', () => {
  let env: TestWorkflowEnvironment;
  let db: Db;
  let worker: Worker;
  let run: Promise<void>;
  let server: Server;
  let base: string;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  const tokens = { requester: '', approver: '' };
  let hostId: string;

  beforeAll(async () => {
    [env, db, smtp] = await Promise.all([createTimeSkippingEnv(), initORM({ pgliteDir: 'memory://' }), startSmtp()]);
    const vault = new Vault(generateKeyring('t'));
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const em = db.em.fork();
    const req = em.create(UserSchema, { username: 'req', email: 'req@example.com', roles: ['requester'] });
    const appr = em.create(UserSchema, { username: 'appr', roles: ['approver'] });
    // An unreachable host: provisioning after approval fails, which is not what these tests look at.
    hostId = em.create(HostSchema, { slug: 'unreachable', name: 'u', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' }).id;
    await em.flush();
    tokens.requester = (await createApiKey(db.em, { userId: req.id, name: 'test' })).key;
    tokens.approver = (await createApiKey(db.em, { userId: appr.id, name: 'test' })).key;
    const taskQueue = 'expiry';
    worker = await Worker.create({ dataConverter: testDataConverter(),
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: createActivities({
        em: db.em,
        vault,
        logger,
        ssh: new SshExecutor({ em: db.em, vault }),
        winrm: new WinRmExecutor({ em: db.em, vault }),
        mailer: createTransport(smtp.url),
        mailFrom: 'hostflow@test',
        baseDomain: 'hosts.test',
      }),
    });
    run = worker.run();
    const app = createApp({
      em: db.em,
      vault,
      logger,
      temporal: { client: env.client, taskQueue },
      settings: { accountOpeningExpiryDays: 7 },
      checks: { db: async () => undefined, temporal: async () => undefined },
    });
    server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server?.close();
    worker?.shutdown();
    await run;
    await env?.teardown();
    await smtp?.stop();
    await db?.close();
  });

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: (await res.json()) as { code: number; data: { id: string; status: string } } };
  };
  const submit = (username: string) => api('POST', '/api/v1/account-openings', tokens.requester, { host_id: hostId, username, full_name: 'T', contact_email: 'req@example.com' });

  it('approving on day 6 is accepted', async () => {
    const a = await submit('daysix');
    expect(a.status).toBe(201);
    await env.sleep('6 days');
    const ok = await api('POST', `/api/v1/account-openings/${a.body.data.id}/approve`, tokens.approver);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const result = await env.client.workflow.getHandle(`account-opening/${a.body.data.id}`).result();
    // Approved, then provisioning ran (and failed on the unreachable host): not expired.
    expect(result.phase).toBe('failed');
    expect(result.decidedBy).toBeTruthy();
  });

  it('expires after 7 days without a decision, notifies the applicant once, and a late approval is 40901', async () => {
    const b = await submit('noanswer');
    const t0 = Date.now();
    const result = await env.client.workflow.getHandle(`account-opening/${b.body.data.id}`).result();
    expect(result.phase).toBe('expired');
    expect(Date.now() - t0).toBeLessThan(20_000);
    const row = await db.em.fork().findOneOrFail(AccountOpeningRequestSchema, { id: b.body.data.id });
    expect(row.status).toBe('expired');
    const late = await api('POST', `/api/v1/account-openings/${b.body.data.id}/approve`, tokens.approver);
    expect([late.status, late.body.code]).toEqual([409, 40901]);
    const notes = await db.em.fork().find(NotificationSchema, { eventKey: `account-opening/${b.body.data.id}/expired`, channel: 'email' });
    expect(notes.map((n) => [n.status, n.recipient])).toEqual([['sent', 'req@example.com']]);
    const mails = smtp.messages.filter((m) => m.raw.includes('expired'));
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to).toEqual(['req@example.com']);
  });
});
