// The notification center against real parts: a real SMTP server (parsed with mailparser), local
// receivers that check signatures as DingTalk / Feishu / WeCom / webhooks document them, a Slack
// Web API stand-in, the real API (inbox, endpoints, templates, unsubscribe) and real workflows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomUUID } from 'node:crypto';
import { simpleParser } from 'mailparser';
import type { Server } from 'node:http';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSmtp } from '../helpers/smtp.js';
import { startDingtalk, startFeishu, startSlackStandIn, startWebhookReceiver, startWecom } from '../helpers/notify-receivers.js';
import { createActivities } from '../../activities/index.js';
import { createLogger } from '../../config/logger.js';
import { createMailer } from '../../config/mailer.js';
import { AccountOpeningRequestSchema, HostSchema, NotificationSchema, UserSchema } from '../../db/entities/index.js';
import type { EmitInput } from '../../activities/notify/events.js';
import { sharedReads } from '../../activities/notify/center.js';
import { consolePath } from '../../activities/notify/console-links.js';

const SLACK_TOKEN = 'xoxb-test-token-123';
const SIGNING = 'slack-signing-secret-for-tests';
/** A header as sent (mailparser turns List-* headers into objects). */
const header = (m: { headerLines: ReadonlyArray<{ key: string; line: string }> }, name: string) => (m.headerLines.find((h) => h.key === name)?.line ?? '').replace(/^[^:]+:\s*/, '').replace(/\r?\n\s+/g, '');

describe('notification center', () => {
  let p: TestPlatform;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let notify: (i: EmitInput) => Promise<{ status: string; sent?: number; suppressed?: number; deduplicated?: number }>;
  const mailer = () => createMailer(smtp.url)!;
  let alice: string;
  let li: string;

  beforeAll(async () => {
    smtp = await startSmtp();
    p = await startTestPlatform({ smtpUrl: smtp.url, notifySettings: { maxAttempts: 3, rateLimitPerHour: 5, sensitiveWords: ['forbidden-word'] } });
    const em = p.db.em.fork();
    alice = em.create(UserSchema, { username: 'alice-n', roles: ['requester'], email: 'alice@notify.test', timezone: 'Europe/Berlin' }).id;
    li = em.create(UserSchema, { username: 'li-n', roles: ['requester'], email: 'li@notify.test', timezone: 'Asia/Shanghai' }).id;
    await em.flush();
    await em.getConnection().execute(`insert into notification_preferences (user_id, language, updated_at) values (?, 'zh-CN', now())`, [li]);
    const acts = createActivities({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), ssh: p.ssh, winrm: p.winrm, mailer: mailer(), mailFrom: 'Hostflow <hostflow@test>', baseDomain: 'hosts.test', publicBaseUrl: () => p.baseUrl, notifySettings: { maxAttempts: 3, rateLimitPerHour: 5, sensitiveWords: ['forbidden-word'] } });
    notify = acts.notify as never;
  });
  afterAll(async () => {
    await p?.close();
    await smtp?.stop();
  });

  const mailsTo = async (to: string, contains: string) => {
    const out = [];
    for (const m of smtp.messages.filter((x) => x.to.includes(to))) {
      const parsed = await simpleParser(m.raw);
      if ((parsed.subject ?? '').includes(contains) || (parsed.text ?? '').includes(contains)) out.push(parsed);
    }
    return out;
  };

  it('email: HTML + text, both languages, dates in the recipient zone, List-Unsubscribe, stable Message-ID; a repeat is deduplicated', async () => {
    const key = `lease/${randomUUID()}/reminder-3d`;
    const endsAt = Date.UTC(2026, 11, 24, 20, 0);
    const data = { host: 'gpu-<01>', hostSlug: 'gpu-01', days: 3, daysText: '3 days', endsAt, allocationId: 'a1' };
    const r = await notify({ event: 'lease.reminder', key, to: { userIds: [alice, li] }, data });
    expect(r).toMatchObject({ status: 'sent', sent: 4 }); // email + inbox, two people
    const [en] = await mailsTo('alice@notify.test', 'gpu-<01>');
    expect(en!.subject).toBe('Your lease of gpu-<01> ends in 3 days');
    expect(en!.text).toContain('ends on 2026-12-24 21:00 (Europe/Berlin, UTC+01:00)');
    expect(en!.html).toContain('gpu-&lt;01&gt;'); // escaped in HTML
    expect(en!.html).not.toContain('gpu-<01>');
    const unsub = header(en!, 'list-unsubscribe');
    expect(unsub).toMatch(/^<http:\/\/127\.0\.0\.1:\d+\/api\/v1\/notifications\/unsubscribe\?token=[\w.-]+>$/);
    expect(header(en!, 'list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
    expect(en!.messageId).toMatch(/^<[0-9a-f]{40}@hostflow>$/);
    const [zh] = await mailsTo('li@notify.test', 'gpu-<01>');
    expect(zh!.subject).toBe('您租用的 gpu-<01> 将在 3 天后到期');
    expect(zh!.text).toContain('2026-12-25 04:00 (Asia/Shanghai, UTC+08:00)');
    // The same occurrence again: nothing is sent twice, the send log counts the duplicate.
    const before = smtp.messages.length;
    const again = await notify({ event: 'lease.reminder', key, to: { userIds: [alice, li] }, data });
    expect(again).toMatchObject({ status: 'duplicate', deduplicated: 4, sent: 0 });
    expect(smtp.messages.length).toBe(before);
    const log = await p.api('GET', `/api/v1/notifications/log?event_key=${encodeURIComponent(key)}&with_attempts=true`);
    expect(log.body.data.items).toHaveLength(4);
    for (const m of log.body.data.items) {
      expect(m).toMatchObject({ status: 'sent', attempts: 1, duplicates: 1, template_version: 0 });
      expect(m.log.map((a: { status: string }) => a.status)).toEqual(['sent', 'deduplicated']);
    }
  });

  it('in-app inbox: list, unread count, mark one read, mark all read (per user)', async () => {
    const token = await p.tokenFor(alice);
    const before = (await p.api('GET', '/api/v1/messages/unread-count', { token })).body.data.unread;
    await notify({ event: 'notification.test', key: `inbox/${randomUUID()}`, to: { userIds: [alice] }, data: { by: 'tester', note: 'one' } });
    await notify({ event: 'notification.test', key: `inbox/${randomUUID()}`, to: { userIds: [alice] }, data: { by: 'tester', note: 'two' } });
    expect((await p.api('GET', '/api/v1/messages/unread-count', { token })).body.data.unread).toBe(before + 2);
    const list = await p.api('GET', '/api/v1/messages?unread=true&page_size=2', { token });
    expect(list.body.data.items[0].body).toContain('two');
    const read = await p.api('POST', `/api/v1/messages/${list.body.data.items[0].id}/read`, { token });
    expect(read.body.data.read_at).not.toBeNull();
    expect((await p.api('GET', '/api/v1/messages/unread-count', { token })).body.data.unread).toBe(before + 1);
    // Someone else's message is not found for me.
    expect((await p.api('POST', `/api/v1/messages/${list.body.data.items[1].id}/read`, { token: p.tokens.operator })).status).toBe(404);
    expect((await p.api('POST', '/api/v1/messages/read-all', { token })).body.data.marked).toBe(before + 1);
    expect((await p.api('GET', '/api/v1/messages/unread-count', { token })).body.data.unread).toBe(0);
  });

  it('webhook: signed over timestamp + body, secret never returned, a wrong secret is refused and retried to the limit, rotation signs with both', async () => {
    const rx = await startWebhookReceiver('placeholder');
    try {
      const created = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `hook-${randomUUID().slice(0, 8)}`, kind: 'webhook', url: `${rx.url}/hook?token=abc` } });
      expect(created.status).toBe(201);
      const secret = created.body.data.secret as string;
      expect(secret).toMatch(/^whsec_/);
      expect(created.body.data.url).toBe(`${rx.url}/hook`); // the query is not shown
      const listed = await p.api('GET', '/api/v1/notifications/endpoints');
      expect(JSON.stringify(listed.body)).not.toContain(secret);
      expect(JSON.stringify(listed.body)).not.toContain('token=abc');
      const id = created.body.data.id;
      expect((await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'host.offline', subject_type: 'endpoint', subject_id: id } })).status).toBe(201);
      // Wrong secret at the receiver: refused, retried (the activity throws so Temporal retries), then failed for good.
      rx.state.secret = 'something-else';
      const key = `host-recheck/${randomUUID()}/offline`;
      const emit = () => notify({ event: 'host.offline', key, to: {}, data: { hostId: 'h1', host: 'box-1', failures: 3 } });
      await expect(emit()).rejects.toThrow(/will be retried/);
      await expect(emit()).rejects.toThrow(/will be retried/);
      expect(await emit()).toMatchObject({ status: 'failed', failed: 1 });
      expect(rx.state.refusals).toBe(3);
      const row = await p.db.em.fork().findOneOrFail(NotificationSchema, { eventKey: key, channel: 'webhook' });
      expect(row).toMatchObject({ status: 'failed', attempts: 3 });
      expect(row.detail).toContain('attempt 3/3: HTTP 401');
      // The right secret: accepted, body as documented.
      rx.state.secret = secret;
      const ok = await notify({ event: 'host.offline', key: `host-recheck/${randomUUID()}/offline`, to: {}, data: { hostId: 'h1', host: 'box-1', failures: 3 } });
      expect(ok.status).toBe('sent');
      const got = rx.accepted.at(-1)!;
      expect(got.body).toMatchObject({ event: 'host.offline', data: { hostId: 'h1', failures: 3 }, subject: 'Host box-1 is offline' });
      expect(got.headers['x-hostflow-message-id']).toBe(got.body.id);
      // Rotation: the new secret and, during the grace period, the old one sign.
      const rotated = await p.api('POST', `/api/v1/notifications/endpoints/${id}/rotate-secret`, { body: { grace_hours: 1 } });
      const newSecret = rotated.body.data.secret as string;
      expect(newSecret).not.toBe(secret);
      await notify({ event: 'host.offline', key: `host-recheck/${randomUUID()}/offline`, to: {}, data: { hostId: 'h1', host: 'box-1', failures: 3 } });
      expect(String(rx.received.at(-1)!.headers['x-hostflow-signature']).split(',')).toHaveLength(2);
      rx.state.secret = newSecret;
      expect((await notify({ event: 'host.offline', key: `host-recheck/${randomUUID()}/offline`, to: {}, data: { hostId: 'h1', host: 'box-1', failures: 3 } })).status).toBe('sent');
      await p.api('DELETE', `/api/v1/notifications/endpoints/${id}`);
    } finally {
      await rx.stop();
    }
  });

  it('DingTalk, Feishu and WeCom robots: signed as documented, markdown escaped; a wrong secret is refused', async () => {
    const ding = await startDingtalk('SECdingtalk-secret', 'tok123');
    const fei = await startFeishu('feishu-secret');
    const wc = await startWecom('wecom-key-1');
    try {
      const mk = async (kind: string, url: string, secret: string) => {
        const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `${kind}-${randomUUID().slice(0, 8)}`, kind, url, secret, language: 'zh-CN' } });
        expect(e.status).toBe(201);
        expect(JSON.stringify(e.body)).not.toContain(secret);
        await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'host.online', subject_type: 'endpoint', subject_id: e.body.data.id } });
        return e.body.data.id as string;
      };
      const ids = [await mk('dingtalk', ding.robotUrl, 'SECdingtalk-secret'), await mk('feishu', fei.hookUrl, 'feishu-secret'), await mk('wecom', wc.sendUrl, 'wecom-key-1')];
      const r = await notify({ event: 'host.online', key: `host-recheck/${randomUUID()}/online`, to: {}, data: { hostId: 'h2', host: 'box_*2*' } });
      expect(r).toMatchObject({ sent: 3 });
      expect(ding.accepted).toHaveLength(1);
      const md = (ding.accepted[0]!.body.markdown as { text: string }).text;
      expect(md).toContain('主机 box\\_\\*2\\* 重新响应'); // zh-CN, markdown-escaped
      expect(fei.accepted).toHaveLength(1);
      expect(JSON.stringify(fei.accepted[0]!.body.card)).toContain('box\\\\_\\\\*2\\\\*');
      expect(wc.accepted).toHaveLength(1);
      // Wrong secrets: each robot refuses, as the real service would.
      for (const id of ids) await p.api('POST', `/api/v1/notifications/endpoints/${id}/rotate-secret`, { body: { secret: 'wrong-secret-value', grace_hours: 0 } });
      const key = `host-recheck/${randomUUID()}/online`;
      await expect(notify({ event: 'host.online', key, to: {}, data: { hostId: 'h2', host: 'box' } })).rejects.toThrow(/3 message\(s\)/);
      const rows = await p.db.em.fork().find(NotificationSchema, { eventKey: key });
      expect(rows.map((x) => x.detail).join('\n')).toMatch(/310000[\s\S]*|19021|93000/);
      expect(rows.every((x) => x.status === 'queued' && x.attempts === 1)).toBe(true);
      for (const id of ids) await p.api('DELETE', `/api/v1/notifications/endpoints/${id}`);
    } finally {
      await Promise.all([ding.stop(), fei.stop(), wc.stop()]);
    }
  });

  it('robots: a group message ends with the console page of its occurrence (sign-in required), never a signed action link; the approver\'s own email keeps its action links', async () => {
    const ding = await startDingtalk('SEClinks-secret', 'tok-links');
    const fei = await startFeishu('feishu-links');
    const wc = await startWecom('wecom-links');
    try {
      const ids: string[] = [];
      for (const [kind, url, secret, language] of [['dingtalk', ding.robotUrl, 'SEClinks-secret', 'zh-CN'], ['feishu', fei.hookUrl, 'feishu-links', 'en'], ['wecom', wc.sendUrl, 'wecom-links', 'en']] as const) {
        const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `${kind}-links-${randomUUID().slice(0, 8)}`, kind, url, secret, language } });
        expect(e.status, JSON.stringify(e.body)).toBe(201);
        ids.push(e.body.data.id);
        for (const event of ['account_opening.submitted', 'lease.reminder']) expect((await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event, subject_type: 'endpoint', subject_id: e.body.data.id } })).status).toBe(201);
      }
      // An approval request: the approver gets signed approve / reject links by email; the groups get the queue page.
      const em = p.db.em.fork();
      const approver = em.create(UserSchema, { username: `appr-${randomUUID().slice(0, 6)}`, roles: ['approver'], email: `appr-${randomUUID().slice(0, 6)}@notify.test` });
      await em.flush();
      const requestId = randomUUID();
      const key = `account-opening/${requestId}/submitted`;
      const r = await notify({ event: 'account_opening.submitted', key, to: { userIds: [approver.id] }, data: { applicant: 'Bob', username: 'bob', host: 'gpu-links', requestId, expiresAt: Date.now() + 86_400_000 } });
      expect(r).toMatchObject({ status: 'sent', sent: 5 }); // email + inbox + 3 robots
      const [approverMail] = await mailsTo(approver.email!, 'gpu-links');
      expect(approverMail!.text).toMatch(/Approve: http:\/\/127\.0\.0\.1:\d+\/api\/v1\/notifications\/actions\/[\w.-]+/);
      const queue = `${p.baseUrl}/account-openings`;
      const dingText = (ding.accepted.at(-1)!.body.markdown as { text: string }).text;
      expect(dingText.trimEnd().endsWith(`[在 Hostflow 中查看（需登录）](${queue})`)).toBe(true);
      const feiText = JSON.stringify(fei.accepted.at(-1)!.body.card);
      expect(feiText).toContain(`[Open in Hostflow (sign-in required)](${queue})`);
      const wcText = (wc.accepted.at(-1)!.body.markdown as { content: string }).content;
      expect(wcText.trimEnd().endsWith(`[Open in Hostflow (sign-in required)](${queue})`)).toBe(true);
      for (const payload of [dingText, feiText, wcText]) expect(payload).not.toMatch(/notifications\/actions|token=|unsubscribe/);
      // The send log keeps the link with the render.
      const stored = await p.db.em.fork().find(NotificationSchema, { eventKey: key, channel: { $in: ['dingtalk', 'feishu', 'wecom'] } });
      expect(stored).toHaveLength(3);
      for (const row of stored) expect(row.body).toContain(`](${queue})`);

      // A lease reminder links to its allocation's page.
      const allocationId = randomUUID();
      await notify({ event: 'lease.reminder', key: `lease/${allocationId}/reminder-1d`, to: {}, data: { host: 'gpu-links', hostSlug: 'gpu-links', days: 1, daysText: '1 day', endsAt: Date.now() + 86_400_000, allocationId } });
      expect((ding.accepted.at(-1)!.body.markdown as { text: string }).text.trimEnd().endsWith(`[在 Hostflow 中查看（需登录）](${p.baseUrl}/allocations/${allocationId})`)).toBe(true);
      // The pages exist in the console router, and events name their ids, not people.
      expect([consolePath('host.offline', { hostId: allocationId }), consolePath('security.new_ip_login', {}), consolePath('registration.role_approval', {}), consolePath('host.offline', { hostId: 'not-a-uuid' })]).toEqual([`/hosts/${allocationId}`, '/audit', '/admin/registrations', '/']);
      for (const id of ids) await p.api('DELETE', `/api/v1/notifications/endpoints/${id}`);
    } finally {
      await Promise.all([ding.stop(), fei.stop(), wc.stop()]);
    }
  });

  it('concurrent emits share their reads (subscriptions, users, templates… asked once per round, not once per emit); every message still goes out once; two racing claims of one message: one wins', async () => {
    const em = p.db.em.fork();
    const emails = Array.from({ length: 24 }, (_, i) => `burst-${i}-${randomUUID().slice(0, 6)}@notify.test`);
    const people = emails.map((email, i) => em.create(UserSchema, { username: `burst-${i}-${randomUUID().slice(0, 6)}`, roles: ['requester'], email, timezone: 'UTC' }).id);
    await em.flush();
    const conn = p.db.em.getDriver().getConnection() as unknown as { logQuery: (q: string, ctx?: unknown) => void };
    const orig = conn.logQuery;
    const seen: string[] = [];
    conn.logQuery = function (this: unknown, q: string, ctx?: unknown) {
      seen.push(q);
      return orig.call(this, q, ctx);
    };
    const run = randomUUID().slice(0, 8);
    let results: Array<{ status: string }> = [];
    try {
      results = await Promise.all(people.map((u, i) => notify({ event: 'notification.test', key: `burst/${run}/${i}`, to: { userIds: [u] }, data: { by: 'burst', note: String(i) } })));
    } finally {
      conn.logQuery = orig;
    }
    expect(results.map((r) => r.status)).toEqual(people.map(() => 'sent'));
    const count = (re: RegExp) => seen.filter((q) => re.test(q)).length;
    const subsQueries = count(/from "notification_subscriptions"/);
    const userQueries = count(/from "users"/);
    console.log(`[notify] ${people.length} concurrent emits: ${subsQueries} subscription queries, ${userQueries} user queries, ${count(/update "notifications" set "attempts"/)} claim statements, ${seen.length} statements in all`);
    expect(subsQueries).toBeGreaterThan(0);
    expect(subsQueries).toBeLessThan(people.length / 2);
    expect(userQueries).toBeLessThan(people.length / 2);
    const rows = await p.db.em.fork().find(NotificationSchema, { eventKey: { $like: `burst/${run}/%` } });
    expect(rows).toHaveLength(people.length * 2);
    expect(rows.every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
    const mails = smtp.messages.filter((m) => emails.some((e) => m.to.includes(e)));
    expect(mails).toHaveLength(people.length);
    expect(new Set(mails.map((m) => /^Message-ID:\s*(\S+)/im.exec(m.raw)?.[1])).size).toBe(people.length);

    // The claim: two attempts of one message asking at the same moment share a statement; one gets it.
    const row = em.create(NotificationSchema, { eventKey: `claim/${run}`, recipient: 'claim@notify.test', channel: 'email', subject: 's', body: 'b' });
    await em.flush();
    const { claims } = sharedReads(p.db.em);
    const loads0 = claims.stats.loads;
    const won = await Promise.all([claims.load({ id: row.id, attempts: 0, nonce: 'a' }), claims.load({ id: row.id, attempts: 0, nonce: 'b' })]);
    expect(won.sort()).toEqual([false, true]);
    expect(claims.stats.loads - loads0).toBe(1);
    expect((await p.db.em.fork().findOneOrFail(NotificationSchema, { id: row.id })).attempts).toBe(1);
    expect(await claims.load({ id: row.id, attempts: 0, nonce: 'c' })).toBe(false); // stale: someone moved it on
  });

  it('Slack: Block Kit via @slack/web-api against the stand-in, a 429 Retry-After is waited out', async () => {
    const slack = await startSlackStandIn(SLACK_TOKEN);
    try {
      const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `slack-${randomUUID().slice(0, 8)}`, kind: 'slack', url: slack.apiUrl, secret: SLACK_TOKEN, channel: 'C0HOSTS' } });
      expect(e.status).toBe(201);
      await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'reclaim.started', subject_type: 'endpoint', subject_id: e.body.data.id } });
      slack.state.rateLimit = 1;
      const t0 = Date.now();
      const r = await notify({ event: 'reclaim.started', key: `lease/${randomUUID()}/reclaim-started`, to: {}, data: { host: 'gpu <9> & co', hostSlug: 'gpu-9', allocationId: 'a9' } });
      expect(r.sent).toBe(1);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // Retry-After: 1
      expect(slack.received.filter((x) => x.path === '/api/chat.postMessage')).toHaveLength(2);
      const post = slack.posts[0]!;
      expect(post.body.channel).toBe('C0HOSTS');
      const blocks = JSON.parse(String(post.body.blocks));
      expect(blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'gpu <9> & co is being reclaimed' } });
      expect(blocks[1].text).toEqual({ type: 'mrkdwn', text: 'Host gpu &lt;9&gt; &amp; co (gpu-9) is being reclaimed now. Allocation: a9' });
      await p.api('DELETE', `/api/v1/notifications/endpoints/${e.body.data.id}`);
    } finally {
      await slack.stop();
    }
  });

  it('Slack DM: a person subscribed on slack gets a DM (users.lookupByEmail → chat.postMessage to the user id); a 429 on the lookup is waited out; no Slack account → failed, not retried', async () => {
    const slack = await startSlackStandIn(SLACK_TOKEN, { U0ALICE: 'Alice@Notify.test' });
    try {
      const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `slack-dm-${randomUUID().slice(0, 8)}`, kind: 'slack', url: slack.apiUrl, secret: SLACK_TOKEN, channel: '@email' } });
      expect(e.status, JSON.stringify(e.body)).toBe(201);
      for (const who of [alice, li]) {
        const sub = await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'host.onboarded', subject_type: 'user', subject_id: who, channel: 'slack' } });
        expect(sub.status, JSON.stringify(sub.body)).toBe(201);
      }
      slack.state.lookupRateLimit = 1;
      const t0 = Date.now();
      const key = `host-onboarding/${randomUUID()}/online`;
      await notify({ event: 'host.onboarded', key, to: {}, data: { host: 'gpu-dm (gpu-dm)', hostId: 'h-dm' } });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // the lookup's Retry-After: 1
      expect(slack.received.filter((x) => x.path === '/api/users.lookupByEmail').map((x) => String(x.body.email)).sort()).toEqual(['alice@notify.test', 'alice@notify.test', 'li@notify.test']);
      expect(slack.posts).toHaveLength(1);
      expect(slack.posts[0]!.body.channel).toBe('U0ALICE');
      expect(JSON.parse(String(slack.posts[0]!.body.blocks))[0].text.text).toBe('Host gpu-dm (gpu-dm) is onboarded and online');
      const rows = await p.db.em.fork().find(NotificationSchema, { eventKey: key, channel: 'slack' });
      const of = (u: string) => rows.find((r) => r.userId === u)!;
      expect(of(alice)).toMatchObject({ status: 'sent', recipient: `user:${alice}` });
      expect(of(alice).providerResponse).toContain('channel=U0ALICE');
      // li has no Slack account in this workspace: a permanent error, recorded, no retry.
      expect(of(li)).toMatchObject({ status: 'failed', attempts: 1 });
      expect(of(li).detail).toContain('users_not_found');
      await p.api('DELETE', `/api/v1/notifications/endpoints/${e.body.data.id}`);
    } finally {
      await slack.stop();
    }
  });

  it('templates: a new version is used for new messages only (queued ones keep theirs); an unknown variable is refused', async () => {
    const bad = await p.api('POST', '/api/v1/notifications/templates', { body: { event: 'host.offline', channel: 'webhook', language: 'en', subject: 'Down: ${host}', body: 'x ${nope}' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.[0]).toMatchObject({ field: 'body' });
    expect(bad.body.errors?.[0]?.message).toContain('${nope}');
    const rx = await startWebhookReceiver('s3cret-pin');
    try {
      const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: `pin-${randomUUID().slice(0, 8)}`, kind: 'webhook', url: rx.url, secret: 's3cret-pin' } });
      await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'host.offline', subject_type: 'endpoint', subject_id: e.body.data.id } });
      const v1 = await p.api('POST', '/api/v1/notifications/templates', { body: { event: 'host.offline', channel: 'webhook', language: 'en', subject: 'v1 down: ${host}', body: 'v1 ${host} failed ${failures}' } });
      expect(v1.body.data.version).toBe(1);
      rx.state.failNext = 1; // the first delivery meets a 503: the message stays queued with v1
      const key = `host-recheck/${randomUUID()}/offline`;
      const emit = () => notify({ event: 'host.offline', key, to: {}, data: { hostId: 'h3', host: 'box-3', failures: 2 } });
      await expect(emit()).rejects.toThrow(/retried/);
      const v2 = await p.api('POST', '/api/v1/notifications/templates', { body: { event: 'host.offline', channel: 'webhook', language: 'en', subject: 'v2 down: ${host}', body: 'v2 ${host}' } });
      expect(v2.body.data.version).toBe(2);
      expect((await emit()).status).toBe('sent');
      expect(rx.accepted.at(-1)!.body).toMatchObject({ subject: 'v1 down: box-3', text: 'v1 box-3 failed 2' });
      const fresh = await notify({ event: 'host.offline', key: `host-recheck/${randomUUID()}/offline`, to: {}, data: { hostId: 'h3', host: 'box-3', failures: 2 } });
      expect(fresh.status).toBe('sent');
      expect(rx.accepted.at(-1)!.body).toMatchObject({ subject: 'v2 down: box-3' });
      const log = await p.api('GET', `/api/v1/notifications/log?event_key=${encodeURIComponent(key)}`);
      expect(log.body.data.items[0]).toMatchObject({ template_version: 1, attempts: 2, status: 'sent' });
      await p.api('DELETE', `/api/v1/notifications/endpoints/${e.body.data.id}`);
    } finally {
      await rx.stop();
    }
  });

  it('suppression: sensitive words, the per-recipient rate limit and the signed unsubscribe link (POST only) each suppress with a reason', async () => {
    const em = p.db.em.fork();
    const bob = em.create(UserSchema, { username: `bob-${randomUUID().slice(0, 6)}`, roles: ['requester'], email: `bob-${randomUUID().slice(0, 6)}@notify.test` });
    await em.flush();
    const word = await notify({ event: 'notification.test', key: `t/${randomUUID()}`, to: { userIds: [bob.id] }, data: { by: 'x', note: 'contains FORBIDDEN-word here' } });
    expect(word).toMatchObject({ status: 'suppressed', suppressed: 2 });
    const rows = await em.fork().find(NotificationSchema, { userId: bob.id });
    expect(rows.every((r) => r.detail === 'sensitive word "forbidden-word" in the message')).toBe(true);
    // Rate limit 5 per hour per recipient and channel.
    for (let i = 0; i < 5; i++) expect((await notify({ event: 'notification.test', key: `rl/${randomUUID()}`, to: { userIds: [bob.id] }, data: { by: 'x', note: String(i) } })).sent).toBe(2);
    const limited = await notify({ event: 'notification.test', key: `rl/${randomUUID()}`, to: { userIds: [bob.id] }, data: { by: 'x', note: 'six' } });
    expect(limited).toMatchObject({ suppressed: 2, sent: 0 });
    const last = await em.fork().find(NotificationSchema, { userId: bob.id, status: 'suppressed' }, { orderBy: { createdAt: 'desc' }, limit: 2 });
    expect(last[0]!.detail).toMatch(/^rate limit: 5 messages/);
    // Unsubscribe from the link of carol's mail: GET shows a page and changes nothing; POST unsubscribes.
    const carol = em.create(UserSchema, { username: `carol-${randomUUID().slice(0, 6)}`, roles: ['requester'], email: `carol-${randomUUID().slice(0, 6)}@notify.test` });
    await em.flush();
    const key1 = `u/${randomUUID()}`;
    await notify({ event: 'account_opening.done', key: key1, to: { userIds: [carol.id] }, data: { requestId: 'r-1', username: 'alice', host: 'h' } });
    const [mail] = await mailsTo(carol.email!, 'r-1');
    const link = /<(.+)>/.exec(header(mail!, 'list-unsubscribe'))![1]!;
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post">');
    expect((await notify({ event: 'account_opening.done', key: `u/${randomUUID()}`, to: { userIds: [carol.id] }, data: { requestId: 'r-2', username: 'alice', host: 'h' } })).sent).toBe(2);
    const tampered = await fetch(link.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), { method: 'POST' });
    expect(tampered.status).toBe(400);
    const one = await fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(one.status).toBe(200);
    const after = await notify({ event: 'account_opening.done', key: `u/${randomUUID()}`, to: { userIds: [carol.id] }, data: { requestId: 'r-3', username: 'alice', host: 'h' } });
    expect(after).toMatchObject({ sent: 1, suppressed: 1 }); // inbox still, email not
    const sup = await em.fork().findOneOrFail(NotificationSchema, { userId: carol.id, channel: 'email', status: 'suppressed' });
    expect(sup.detail).toBe('recipient unsubscribed from account_opening.done on email');
  });
});

describe('decide from the message: account opening approved from Slack and from an email link', () => {
  let p: TestPlatform;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let slack: Awaited<ReturnType<typeof startSlackStandIn>>;
  let hostId: string;
  let approverEmail: string;

  beforeAll(async () => {
    smtp = await startSmtp();
    p = await startTestPlatform({ smtpUrl: smtp.url });
    approverEmail = 'approver@notify.test';
    const em = p.db.em.fork();
    await em.nativeUpdate(UserSchema, { id: p.users.approver }, { email: approverEmail });
    await em.nativeUpdate(UserSchema, { id: p.users.requester }, { email: 'requester@notify.test' });
    hostId = em.create(HostSchema, { slug: `dm-${randomUUID().slice(0, 6)}`, name: 'decide-box', address: '127.0.0.1', port: 1, os: 'linux', username: 'ops', status: 'online' }).id;
    await em.flush();
    slack = await startSlackStandIn(SLACK_TOKEN, { U0APPROVER: approverEmail, U0REQ: 'requester@notify.test' });
  });
  afterAll(async () => {
    await p?.close();
    await smtp?.stop();
    await slack?.stop();
  });

  /** A pending request and its running account-opening workflow (as POST /account-openings creates them). */
  async function pendingRequest(): Promise<string> {
    const em = p.db.em.fork();
    const id = randomUUID();
    em.create(AccountOpeningRequestSchema, { id, applicant: p.users.requester, contactEmail: 'requester@notify.test', username: `u${id.slice(0, 6)}`, fullName: 'Req User', host: hostId, workflowId: `account-opening/${id}`, expiresAt: new Date(Date.now() + 86_400_000) });
    await em.flush();
    await p.client.workflow.start('accountOpening', { taskQueue: p.taskQueue, workflowId: `account-opening/${id}`, args: [{ requestId: id, applicantId: p.users.requester, mode: 'decide', decisionTimeoutMs: 86_400_000 }] });
    return id;
  }

  const waitFor = async <T>(f: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const slackSigned = (body: string, ts = Math.floor(Date.now() / 1000), secret = SIGNING) => ({
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`,
  });

  it('Slack: the approval request carries buttons; a wrong signature or an old timestamp is 401 and changes nothing; a signed click approves', { timeout: 90_000 }, async () => {
    const { createApp } = await import('../../api/app.js');
    const app = createApp({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), identity: p.identity, temporal: { client: p.client, taskQueue: p.taskQueue }, settings: { accountOpeningExpiryDays: 7 }, checks: { db: async () => {}, temporal: async () => {} }, slackSigningSecret: SIGNING });
    const server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const e = await p.api('POST', '/api/v1/notifications/endpoints', { body: { name: 'slack-approvals', kind: 'slack', url: slack.apiUrl, secret: SLACK_TOKEN, channel: 'C0APPROVALS' } });
      await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'account_opening.submitted', subject_type: 'endpoint', subject_id: e.body.data.id } });
      const id = await pendingRequest();
      const post = await waitFor(() => slack.posts.find((x) => String(x.body.blocks).includes(id)));
      const blocks = JSON.parse(String(post.body.blocks));
      expect(blocks.at(-1)).toMatchObject({ type: 'actions', elements: [{ action_id: 'approve', value: id }, { action_id: 'reject', value: id }] });
      const payload = (user: string) => `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: user }, channel: { id: 'C0APPROVALS' }, message: { ts: '1001.000100' }, actions: [{ action_id: 'approve', value: id }] }))}`;
      const send = (body: string, headers: Record<string, string>) => fetch(`${base}/api/v1/integrations/slack/actions`, { method: 'POST', headers, body });
      expect((await send(payload('U0APPROVER'), slackSigned(payload('U0APPROVER'), undefined, 'wrong-signing-secret'))).status).toBe(401);
      expect((await send(payload('U0APPROVER'), slackSigned(payload('U0APPROVER'), Math.floor(Date.now() / 1000) - 301))).status).toBe(401);
      // The applicant cannot approve their own request from Slack either.
      const self = (await (await send(payload('U0REQ'), slackSigned(payload('U0REQ')))).json()) as { data: unknown };
      expect(self.data).toMatchObject({ ok: false });
      const handle = p.client.workflow.getHandle(`account-opening/${id}`);
      expect((await handle.query('state') as { phase: string }).phase).toBe('pending');
      const ok = await send(payload('U0APPROVER'), slackSigned(payload('U0APPROVER')));
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { data: unknown }).data).toMatchObject({ ok: true, text: expect.stringContaining('Approved by approver') });
      const st = await handle.query('state') as { phase: string; decidedBy: string };
      expect(['approved', 'provisioning', 'failed']).toContain(st.phase);
      expect(st.decidedBy).toBe(p.users.approver);
      expect(slack.updates.at(-1)!.body.text).toContain('Approved by approver');
      const audit = await p.api('GET', `/api/v1/audit-events?action=account-opening.approve&target_id=${id}`);
      expect(JSON.stringify(audit.body)).toContain('slack');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('email: approvers get signed approve/reject links; GET only confirms, POST decides once, the link is single-use', { timeout: 90_000 }, async () => {
    const id = await pendingRequest();
    const mail = await waitFor(async () => {
      for (const m of smtp.messages.filter((x) => x.to.includes(approverEmail))) {
        const parsed = await simpleParser(m.raw);
        if ((parsed.text ?? '').includes(id)) return parsed;
      }
      return undefined;
    });
    const links = [...(mail.text ?? '').matchAll(/(Approve|Reject): (http\S+)/g)].map((m) => ({ kind: m[1], url: m[2]! }));
    expect(links.map((l) => l.kind)).toEqual(['Approve', 'Reject']);
    const approve = links[0]!.url;
    const page = await fetch(approve);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Approve the account request?');
    const handle = p.client.workflow.getHandle(`account-opening/${id}`);
    expect((await handle.query('state') as { phase: string }).phase).toBe('pending');
    const done = await fetch(approve, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(((await done.json()) as { data: unknown }).data).toMatchObject({ request_id: id, decided_by: p.users.approver });
    const again = await fetch(approve, { method: 'POST' });
    expect(again.status).toBe(409);
    // The requester (the applicant) got no links: nobody decides their own request.
    const applicantMails = smtp.messages.filter((m) => m.to.includes('requester@notify.test') && m.raw.includes(id));
    expect(applicantMails.every((m) => !m.raw.includes('/notifications/actions/'))).toBe(true);
  });
});
