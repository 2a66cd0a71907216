// Role notifications with users that have email addresses (the earlier test users had none,
// which hid that `this.notify` is undefined when Temporal calls the activity as a plain function).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSmtp } from '../helpers/smtp.js';
import { createActivities } from '../../activities/index.js';
import { createLogger } from '../../config/logger.js';
import { createTransport } from 'nodemailer';
import { HostSchema, UserSchema } from '../../db/entities/index.js';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('notify: role notifications reach every admin with an email address', () => {
  let p: TestPlatform;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  beforeAll(async () => {
    smtp = await startSmtp();
    p = await startTestPlatform({ smtpUrl: smtp.url });
    const em = p.db.em.fork();
    await em.nativeUpdate(UserSchema, { id: p.users.admin }, { email: 'admin@ops.test' });
    em.create(UserSchema, { username: 'admin2', roles: ['admin'], email: 'admin2@ops.test' });
    await em.flush();
  });
  afterAll(async () => {
    await p?.close();
    await smtp?.stop();
  });

  it('the notify activity works when called unbound, as Temporal calls it', async () => {
    const mailer = createTransport(smtp.url);
    const { notify } = createActivities({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), ssh: p.ssh, winrm: p.winrm, mailer, mailFrom: 'Hostflow <hostflow@test>', baseDomain: 'hosts.test' });
    const r = await notify({ eventKey: `test/role/${Date.now()}`, role: 'admin', subject: 'role test', body: 'hello admins' });
    mailer.close();
    expect(r.status).toBe('sent');
    const to = smtp.messages.filter((m) => m.raw.includes('role test')).flatMap((m) => m.to).sort();
    expect(to).toEqual(['admin2@ops.test', 'admin@ops.test']);
  });

  it('host-recheck completes and its offline alert is mailed to the admins', { timeout: 60_000 }, async () => {
    const em = p.db.em.fork();
    const host = em.create(HostSchema, { slug: 'gone-box', name: 'gone-box', address: '127.0.0.1', port: await closedPort(), os: 'linux', username: 'ops', status: 'online' });
    await em.flush();
    const result = await p.client.workflow.execute('hostRecheck', { taskQueue: p.taskQueue, workflowId: `host-recheck-notify-${Date.now()}`, args: [{ offlineAfter: 1 }], workflowExecutionTimeout: '45 seconds' });
    expect(result).toMatchObject({ checked: 1, failed: 1, changed: [`${host.id}:offline`] });
    const alerts = smtp.messages.filter((m) => m.raw.includes(`Host gone-box (gone-box) is offline`));
    expect(alerts.flatMap((m) => m.to).sort()).toEqual(['admin2@ops.test', 'admin@ops.test']);
  });
});
