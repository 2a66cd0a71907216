// Fault injection for the notification center: the worker process is killed with SIGKILL while a
// batch of security alerts is being sent — right after the SMTP server has taken a mail and before
// it answered 250, i.e. after the provider accepted a message and before the activity could record
// it. A new worker takes over. Real worker process, real PostgreSQL, real SMTP server, a real
// webhook receiver, real Temporal dev server. Every (event, recipient, channel) ends `sent` once in
// the send log; the SMTP server sees the interrupted mail a second time with the same Message-ID
// (SMTP has no idempotency: the stable id is what lets a receiver drop it); the webhook receiver,
// deduping on X-Hostflow-Message-Id, processes each message once.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { startPlatformWorker, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSmtp, type ReceivedMail } from '../helpers/smtp.js';
import { startWebhookReceiver } from '../helpers/notify-receivers.js';
import { formatKeyring } from '../../db/vault.js';
import { createMailer } from '../../config/mailer.js';
import { createLogger } from '../../config/logger.js';
import { raiseSecurityEvent } from '../../db/audit/security-rules.js';
import { NotificationAttemptSchema, NotificationSchema, SecurityEventSchema, UserSchema } from '../../db/entities/index.js';
import type { securityAlerts } from '../../workflows/security-alerts.workflow.js';
import { captureHistories } from '../helpers/history.js';

const EVENTS = 6;
const KILL_AT_MAIL = 3;

describe('fault: worker killed mid-send (notification center; real worker process, PostgreSQL, SMTP, webhook receiver, Temporal)', () => {
  let p: TestPlatform;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let child: ChildProcess | undefined;
  let killedOn: ReceivedMail | undefined;

  beforeAll(async () => {
    [p, smtp, hook] = await Promise.all([
      startTestPlatform({ db: 'postgres', worker: false }),
      startSmtp({
        onMessage: (m, n) => {
          // The server holds the mail; the sender gets no 250: it dies first.
          if (n === KILL_AT_MAIL && child && child.exitCode === null) {
            killedOn = m;
            child.kill('SIGKILL');
          }
        },
      }),
      startWebhookReceiver('to-be-replaced'),
    ]);
  });
  afterAll(async () => {
    // The securityAlerts replay fixture comes from this run (a worker crash and a retried activity in it).
    if (process.env.CAPTURE_HISTORIES && p) await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
    child?.kill('SIGKILL');
    await p?.close();
    await smtp?.stop();
    await hook?.stop();
  });

  it(`${EVENTS} alerts × (2 people × email + inbox, 1 webhook): SIGKILL after the SMTP server took mail ${KILL_AT_MAIL}; each message ends sent once`, { timeout: 300_000 }, async () => {
    // Two people who may read the audit trail, with addresses; a webhook subscribed to everything.
    const em = p.db.em.fork();
    await em.nativeUpdate(UserSchema, { id: p.users.admin }, { email: 'admin@alerts.test' });
    const auditor = em.create(UserSchema, { username: 'auditor1', email: 'auditor@alerts.test', roles: ['auditor'] });
    await em.flush();
    const ep = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: 'siem', kind: 'webhook', url: `${hook.url}/hostflow` } });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    hook.state.secret = ep.body.data.secret;
    expect((await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: '*', subject_type: 'endpoint', subject_id: ep.body.data.id } })).status).toBe(201);
    // The alerts (as the rules raise them): about an account nobody here owns, so no owner message.
    const at = Date.now();
    for (let i = 0; i < EVENTS; i++) {
      await raiseSecurityEvent(p.db.em.fork(), { kind: 'repeated_forbidden', dedupKey: `mallory-${i}:${at}`, at: new Date(at + i), username: `mallory${i}`, ip: '203.0.113.9', detail: { forbidden: 5 + i } });
    }

    // node itself with tsx's loader (not the tsx launcher), so SIGKILL hits the worker process.
    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/worker-process.ts', import.meta.url))], {
      env: {
        ...process.env,
        HF_DATABASE_URL: p.db.orm.config.get('clientUrl') as string,
        HF_TEMPORAL: inject('temporalAddress'),
        HF_TASK_QUEUE: p.taskQueue,
        HF_KEYS: formatKeyring(p.keyring),
        HF_PAYLOAD_KEYS: formatKeyring(p.payloadKeys),
        HF_BUNDLE: inject('workflowBundlePath'),
        HF_SMTP_URL: smtp.url,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((res) => child!.once('exit', (_c, sig) => res(sig)));
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child!.once('exit', (c) => reject(new Error(`worker exited ${c}`)));
    });
    const handle = await p.client.workflow.start<typeof securityAlerts>('securityAlerts', { taskQueue: p.taskQueue, workflowId: `security-alerts-killed-${at}`, args: [{}] });
    expect(await exited).toBe('SIGKILL');
    expect(killedOn).toBeDefined();
    const killedAt = Date.now();
    // Nothing of the interrupted mail was recorded as sent.
    const interruptedId = (await simpleParser(killedOn!.raw)).messageId!;
    const w = await startPlatformWorker({ db: p.db, vault: p.vault, ssh: p.ssh, winrm: p.winrm, mailer: createMailer(smtp.url), logger: createLogger({ level: 'silent' }), taskQueue: p.taskQueue, payloadKeys: p.payloadKeys });
    try {
      const r = await handle.result();
      console.log(`[faults] notify worker killed at mail ${KILL_AT_MAIL}: batch done ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
      // The killed attempt had finished (and marked) the first alert; the retry delivered the rest.
      expect(r.delivered).toBe(EVENTS - 1);
    } finally {
      await w.stop();
    }

    // The send log: one row per (event, recipient, channel), every one sent.
    const rows = await p.db.em.fork().find(NotificationSchema, { eventKey: { $like: 'security-event/%' } });
    const byChannel = (c: string) => rows.filter((n) => n.channel === c);
    expect(byChannel('email')).toHaveLength(EVENTS * 2);
    expect(byChannel('inbox')).toHaveLength(EVENTS * 2);
    expect(byChannel('webhook')).toHaveLength(EVENTS);
    expect(new Set(rows.map((n) => n.status))).toEqual(new Set(['sent']));
    expect(new Set(rows.map((n) => `${n.eventKey}|${n.recipient}|${n.channel}`)).size).toBe(rows.length);
    expect(byChannel('inbox').filter((n) => n.userId === auditor.id)).toHaveLength(EVENTS);

    // SMTP: 12 distinct Message-IDs; the interrupted one arrived twice (same id), nothing else did.
    const ids = await Promise.all(smtp.messages.map(async (m) => (await simpleParser(m.raw)).messageId!));
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    console.log(`[faults] SMTP server: ${smtp.messages.length} mails received, ${counts.size} distinct Message-IDs`);
    expect(counts.size).toBe(EVENTS * 2);
    expect([...counts.entries()].filter(([, n]) => n > 1)).toEqual([[interruptedId, 2]]);
    expect(smtp.messages).toHaveLength(EVENTS * 2 + 1);
    // Its row says so: sent on attempt 2 (attempt 1 died with the worker, unrecorded).
    const twice = byChannel('email').filter((n) => n.attempts > 1);
    expect(twice).toHaveLength(1);
    const attempts = await p.db.em.fork().find(NotificationAttemptSchema, { notificationId: twice[0]!.id });
    expect(attempts.map((a) => [a.attempt, a.status])).toEqual([[2, 'sent']]);

    // The webhook receiver processed each message once (it dedupes on X-Hostflow-Message-Id).
    expect(hook.accepted).toHaveLength(EVENTS);
    expect(new Set(hook.accepted.map((r) => r.body.event_key)).size).toBe(EVENTS);
    expect(hook.state.refusals).toBe(0);
    // Every alert row is marked delivered.
    expect(await p.db.em.fork().count(SecurityEventSchema, { notifiedAt: null })).toBe(0);
  });
});
