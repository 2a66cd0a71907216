/**
 * Notification center benchmark: lease reminders fanned out to email + webhook + Slack, against
 * a bare nodemailer baseline sending the same number of mails to the same SMTP server.
 *
 *   npm run bench:notify                                   # 1,000 reminders, concurrency 20
 *   BENCH_MESSAGES=10000 BENCH_CONCURRENCY=50 npm run bench:notify
 *   BENCH_DB=postgresql npm run bench:notify               # a throwaway PostgreSQL cluster instead of PGlite
 *   BENCH_DATABASE_URL=postgres://… npm run bench:notify   # a fresh database on that server
 *
 * Setup (not measured): an in-memory PGlite database (or PostgreSQL, above), migrated; a real SMTP server (smtp-server)
 * on loopback; a webhook receiver that checks the signature and dedupes on X-Hostflow-Message-Id;
 * the Slack Web API stand-in (Slack itself cannot be reached here: that is what it stands in for).
 * One customer user with an email address; a webhook endpoint and a Slack endpoint subscribed to
 * lease.reminder. The center is called as the lease's recordLeaseEvent activity calls it (no
 * Temporal in between: this measures the center, not task dispatch).
 *
 * Rows (each side runs BENCH_MESSAGES occurrences, BENCH_CONCURRENCY in flight):
 *   center pooled      emit lease.reminder: send-log row + render + email (pooled SMTP, 5 conns)
 *                      + inbox + webhook + Slack, each recorded
 *   center 1 session   the same with one SMTP session per mail (nodemailer without pool)
 *   bare pooled        nodemailer.sendMail of a pre-rendered mail, pooled transport
 *   bare 1 session     the same, one session per mail
 * Figures: occurrences/s and messages/s per channel, p50/p99 latency of one occurrence (emit
 * call → every channel delivered and recorded), duplicates seen by the receivers (goal 0).
 * Nothing is asserted: the script prints, and exits 1 only if it could not run.
 */
import { randomUUID } from 'node:crypto';
import { createTransport } from 'nodemailer';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { CustomerSchema, NotificationSubscriptionSchema, UserSchema } from '../db/entities/index.js';
import { createLogger } from '../config/logger.js';
import { createMailer } from '../config/mailer.js';
import { createEmitter } from '../activities/notify/notify.activities.js';
import { createEndpoint } from '../api/routes/notifications/service.js';
import { startSmtp } from '../test/helpers/smtp.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';
import { startSlackStandIn, startWebhookReceiver } from '../test/helpers/notify-receivers.js';

const N = Number(process.env.BENCH_MESSAGES ?? 1000);
const C = Number(process.env.BENCH_CONCURRENCY ?? 20);
const SLACK_TOKEN = 'xoxb-bench-token';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

async function pool(n: number, c: number, one: (i: number) => Promise<void>): Promise<{ seconds: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        await one(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, lat };
}

const messageIds = (raws: string[]) => raws.map((r) => /^Message-ID:\s*(\S+)/im.exec(r)?.[1] ?? '');
const dupes = (ids: string[]) => ids.length - new Set(ids).size;

async function main() {
  const onPostgres = Boolean(process.env.BENCH_DATABASE_URL) || process.env.BENCH_DB === 'postgresql';
  const cluster = onPostgres && !process.env.BENCH_DATABASE_URL ? await startPostgres() : undefined;
  const databaseUrl = onPostgres ? await createDatabase(process.env.BENCH_DATABASE_URL ?? cluster!.url, `hostflow_bench_notify_${randomUUID().slice(0, 8)}`) : undefined;
  const db = await initORM(databaseUrl ? { databaseUrl } : { pgliteDir: 'memory://' });
  const vault = new Vault(generateKeyring('bench'));
  const logger = createLogger({ level: 'silent' });
  const smtp = await startSmtp();
  const hook = await startWebhookReceiver('x');
  const slack = await startSlackStandIn(SLACK_TOKEN);
  try {
    const em = db.em.fork();
    const customerId = em.create(CustomerSchema, { name: 'Bench', code: 'bench' }).id;
    const userId = em.create(UserSchema, { username: 'bench-user', email: 'bench@notify.test', roles: ['customer_member'], customerId, timezone: 'Asia/Shanghai' }).id;
    await em.flush();
    const wh = await createEndpoint({ em: db.em, vault }, { name: 'bench-hook', kind: 'webhook', url: `${hook.url}/h` });
    hook.state.secret = wh.generatedSecret!;
    const sl = await createEndpoint({ em: db.em, vault }, { name: 'bench-slack', kind: 'slack', url: slack.apiUrl, secret: SLACK_TOKEN, channel: 'C0BENCH' });
    const em2 = db.em.fork();
    for (const { endpoint: e } of [wh, sl]) em2.create(NotificationSubscriptionSchema, { event: 'lease.reminder', channel: e.kind, subjectType: 'endpoint', subjectId: e.id });
    await em2.flush();

    const rows: Array<{ name: string; seconds: number; lat: number[]; mails: number; hooks: number; posts: number; dup: number }> = [];
    const data = (i: number) => ({ host: `GPU box ${i}`, hostSlug: `gpu-${i}`, days: 7, daysText: '7 days', endsAt: Date.now() + 7 * 86_400_000, allocationId: randomUUID() });
    const settings = { rateLimitPerHour: 0 };

    for (const pooled of [true, false]) {
      const mailer = createMailer(smtp.url, { pool: pooled })!;
      const emit = createEmitter({ em: db.em, vault, logger, mailer, mailFrom: 'Hostflow <hostflow@bench>', notifySettings: settings });
      const m0 = smtp.messages.length;
      const h0 = hook.accepted.length;
      const hr0 = hook.received.length;
      const p0 = slack.posts.length;
      const run = randomUUID().slice(0, 8);
      await emit({ event: 'lease.reminder', key: `bench/${run}/warmup`, to: { userIds: [userId] }, data: data(-1) });
      let retries = 0;
      const r = await pool(N, C, async (i) => {
        const input = { event: 'lease.reminder' as const, key: `bench/${run}/${i}`, to: { userIds: [userId] }, data: data(i) };
        // As the activity's retry would: a message that failed is retried, the sent ones are deduplicated.
        for (let attempt = 1; ; attempt++) {
          try {
            await emit(input);
            return;
          } catch (err) {
            if (attempt >= 5) throw err;
            retries++;
          }
        }
      });
      if (retries) console.log(`center ${pooled ? 'pooled' : '1 session'}: ${retries} emit(s) retried (a channel failed once; see the send log)`);
      const raws = smtp.messages.slice(m0 + 1).map((m) => m.raw);
      rows.push({ name: `center ${pooled ? 'pooled' : '1 session'}`, ...r, mails: raws.length, hooks: hook.accepted.length - h0 - 1, posts: slack.posts.length - p0 - 1, dup: dupes(messageIds(raws)) + (hook.received.length - hr0 - (hook.accepted.length - h0)) });
      mailer.close();
    }
    for (const pooled of [true, false]) {
      const mailer = pooled ? createMailer(smtp.url, { pool: true })! : createTransport(smtp.url);
      const m0 = smtp.messages.length;
      const run = randomUUID().slice(0, 8);
      await mailer.sendMail({ from: 'hostflow@bench', to: 'bench@notify.test', subject: 'warm-up', text: 'x', messageId: `<${run}.w@bench>` });
      const r = await pool(N, C, async (i) => {
        await mailer.sendMail({ from: 'Hostflow <hostflow@bench>', to: 'bench@notify.test', subject: `Your lease of GPU box ${i} ends in 7 days`, text: `Your lease of host GPU box ${i} (gpu-${i}) ends on 2026-12-24 21:00.\nAsk your account manager to extend it.`, html: `<p>Your lease of host <b>GPU box ${i}</b> ends soon.</p>`, messageId: `<${run}.${i}@bench>` });
      });
      const raws = smtp.messages.slice(m0 + 1).map((m) => m.raw);
      rows.push({ name: `bare ${pooled ? 'pooled' : '1 session'}`, ...r, mails: raws.length, hooks: 0, posts: 0, dup: dupes(messageIds(raws)) });
      mailer.close();
    }

    console.log(`\nnotify bench: ${N} lease reminders per row, ${C} in flight, on ${db.kind} (load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)})\n`);
    console.log('row                  occ/s   mail/s  hook/s  slack/s   p50 ms   p99 ms  duplicates');
    for (const r of rows) {
      const per = (n: number) => (n / r.seconds).toFixed(0).padStart(7);
      console.log(`${r.name.padEnd(18)} ${(N / r.seconds).toFixed(0).padStart(7)} ${per(r.mails)} ${per(r.hooks)} ${per(r.posts)}  ${pct(r.lat, 50).toFixed(1).padStart(7)}  ${pct(r.lat, 99).toFixed(1).padStart(7)}  ${String(r.dup).padStart(10)}`);
    }
    const cp = rows.find((r) => r.name === 'center pooled')!;
    const bp = rows.find((r) => r.name === 'bare pooled')!;
    console.log(`\ncenter pooled / bare pooled: mail throughput ${(cp.mails / cp.seconds / (bp.mails / bp.seconds)).toFixed(2)}x (the center also writes the send log and delivers inbox + webhook + Slack per occurrence)`);
  } finally {
    await smtp.stop();
    await hook.stop();
    await slack.stop();
    await db.close();
    await cluster?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
