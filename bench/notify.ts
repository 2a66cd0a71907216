/**
 * Notification center benchmark: lease reminders fanned out to email + inbox + webhook + Slack,
 * against a bare nodemailer baseline sending the same number of mails to the same SMTP server.
 *
 *   npm run bench:notify                                   # 1,000 reminders, concurrency 20
 *   BENCH_MESSAGES=10000 BENCH_CONCURRENCY=50 npm run bench:notify
 *   BENCH_DB=postgresql npm run bench:notify               # a throwaway PostgreSQL cluster instead of PGlite
 *   BENCH_DATABASE_URL=postgres://… npm run bench:notify   # a fresh database on that server
 *   BENCH_ROWS=center-pooled,bare-pooled npm run bench:notify   # only these rows
 *
 * Setup (not measured): an in-memory PGlite database (or PostgreSQL, above), migrated; a real SMTP
 * server (smtp-server) on loopback; a webhook receiver that checks the signature and dedupes on
 * X-Hostflow-Message-Id; the Slack Web API stand-in (Slack itself cannot be reached here: that is
 * what it stands in for). BENCH_USERS customer users (default min(messages, 1000)), each with an
 * email address and a time zone, one reminder per lease spread over them; a webhook endpoint and a
 * Slack endpoint subscribed to lease.reminder. The per-recipient rate limit is on (set high enough
 * that nothing is suppressed) so its query is paid. The center is called as the lease's
 * recordLeaseEvent activity calls it (no Temporal in between: this measures the center, not task
 * dispatch).
 *
 * Rows (each side runs BENCH_MESSAGES occurrences, BENCH_CONCURRENCY in flight):
 *   center-pooled      emit lease.reminder: send-log rows + render + email (pooled SMTP, 5 conns)
 *                      + inbox + webhook + Slack, each recorded
 *   center-1session    the same with one SMTP session per mail (nodemailer without pool)
 *   bare-pooled        nodemailer.sendMail of a pre-rendered mail, pooled transport
 *   bare-1session      the same, one session per mail
 * Figures: occurrences/s and messages/s per channel; p50/p99 of one emit (call → every channel
 * delivered and recorded); p99 due → delivered per channel (all N reminders are due at the start
 * of the row, a 10:00 burst; delivered = the receiver got the message); duplicates seen by the
 * receivers (goal 0); SQL statements per occurrence (MikroORM's query log, BEGIN/COMMIT counted),
 * and the statements of one occurrence (the profile). Nothing is asserted: the script prints, and
 * exits 1 only if it could not run.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createTransport } from 'nodemailer';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { CustomerSchema, NotificationSubscriptionSchema, UserSchema } from '../db/entities/index.js';
import { createLogger } from '../config/logger.js';
import { createMailer } from '../config/mailer.js';
import { createEmitter } from '../activities/notify/notify.activities.js';
import { sharedReads } from '../activities/notify/center.js';
import { createEndpoint } from '../api/routes/notifications/service.js';
import { startSmtp } from '../test/helpers/smtp.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';
import { startSlackStandIn, startWebhookReceiver } from '../test/helpers/notify-receivers.js';

const N = Number(process.env.BENCH_MESSAGES ?? 1000);
const C = Number(process.env.BENCH_CONCURRENCY ?? 20);
const U = Number(process.env.BENCH_USERS ?? Math.min(N, 1000));
const ROWS = (process.env.BENCH_ROWS ?? 'center-pooled,center-1session,bare-pooled,bare-1session').split(',');
const SLACK_TOKEN = 'xoxb-bench-token';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
};

async function pool(n: number, c: number, one: (i: number) => Promise<void>): Promise<{ t0: number; seconds: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = Date.now();
  const p0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        await one(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { t0, seconds: (performance.now() - p0) / 1000, lat };
}

const messageIds = (raws: string[]) => raws.map((r) => /^Message-ID:\s*(\S+)/im.exec(r)?.[1] ?? '');
const dupes = (ids: string[]) => ids.length - new Set(ids).size;

interface Row {
  name: string;
  seconds: number;
  lat: number[];
  mails: number;
  hooks: number;
  posts: number;
  dup: number;
  queries?: number;
  due: { mail: number[]; hook: number[]; slack: number[] };
  /** CPU ms per occurrence: this process (center + SMTP server + receivers), and the PostgreSQL backends. */
  cpu?: { node: number; pg: number | null; loopP99: number };
}

/** utime + stime (ms) of PostgreSQL backend processes, read from /proc (the cluster runs on this machine). */
function procCpuMs(pids: number[]): Map<number, number> {
  const tick = 100; // USER_HZ on Linux
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out.set(pid, ((Number(rest[11]) + Number(rest[12])) * 1000) / tick);
    } catch {
      /* gone */
    }
  }
  return out;
}

async function main() {
  const onPostgres = Boolean(process.env.BENCH_DATABASE_URL) || process.env.BENCH_DB === 'postgresql';
  const cluster = onPostgres && !process.env.BENCH_DATABASE_URL ? await startPostgres() : undefined;
  const databaseUrl = onPostgres ? await createDatabase(process.env.BENCH_DATABASE_URL ?? cluster!.url, `hostflow_bench_notify_${randomUUID().slice(0, 8)}`) : undefined;
  const db = await initORM(databaseUrl ? { databaseUrl } : { pgliteDir: 'memory://' });
  const vault = new Vault(generateKeyring('bench'));
  const logger = createLogger({ level: 'silent' });
  const mailTimes: number[] = [];
  const smtp = await startSmtp({ onMessage: () => mailTimes.push(Date.now()) });
  const hook = await startWebhookReceiver('x');
  const slack = await startSlackStandIn(SLACK_TOKEN);

  // Every SQL statement MikroORM runs (BEGIN/COMMIT included) goes through Connection.logQuery.
  const conn = db.orm.em.getDriver().getConnection() as unknown as { logQuery: (q: string, ctx?: unknown) => void };
  const origLog = conn.logQuery.bind(conn);
  let queries = 0;
  let capture: string[] | null = null;
  // Time per statement shape over a whole row (took: MikroORM's own ms, from send to result).
  const took = new Map<string, { n: number; ms: number }>();
  conn.logQuery = (q: string, ctx?: unknown) => {
    queries++;
    const shape = q.replace(/\s+/g, ' ').slice(0, 150);
    capture?.push(shape);
    const t = took.get(shape.slice(0, 90)) ?? { n: 0, ms: 0 };
    t.n++;
    t.ms += Number((ctx as { took?: number } | undefined)?.took ?? 0);
    took.set(shape.slice(0, 90), t);
    origLog(q, ctx);
  };

  try {
    const em = db.em.fork();
    const customerId = em.create(CustomerSchema, { name: 'Bench', code: 'bench' }).id;
    const zones = ['Asia/Shanghai', 'Europe/Berlin', 'America/New_York', 'UTC'];
    const users: string[] = [];
    for (let i = 0; i < U; i++) users.push(em.create(UserSchema, { username: `bench-user-${i}`, email: `bench-${i}@notify.test`, roles: ['customer_member'], customerId, timezone: zones[i % zones.length]! }).id);
    await em.flush();
    const wh = await createEndpoint({ em: db.em, vault }, { name: 'bench-hook', kind: 'webhook', url: `${hook.url}/h` });
    hook.state.secret = wh.generatedSecret!;
    const sl = await createEndpoint({ em: db.em, vault }, { name: 'bench-slack', kind: 'slack', url: slack.apiUrl, secret: SLACK_TOKEN, channel: 'C0BENCH' });
    const em2 = db.em.fork();
    for (const { endpoint: e } of [wh, sl]) em2.create(NotificationSubscriptionSchema, { event: 'lease.reminder', channel: e.kind, subjectType: 'endpoint', subjectId: e.id });
    await em2.flush();

    const rows: Row[] = [];
    const header = 'row               occ/s  mail/s  hook/s slack/s  emit p50  emit p99 | due→delivered p99 s: mail   hook  slack | dup  SQL/occ | CPU ms/occ: node    pg | loop p99 ms';
    const line = (r: Row) => {
      const per = (n: number) => (n / r.seconds).toFixed(0).padStart(7);
      const d = (xs: number[]) => (xs.length ? (pct(xs, 99) / 1000).toFixed(1) : '-').padStart(6);
      return `${r.name.padEnd(16)} ${(N / r.seconds).toFixed(0).padStart(6)} ${per(r.mails)} ${per(r.hooks)} ${per(r.posts)} ${pct(r.lat, 50).toFixed(1).padStart(9)} ${pct(r.lat, 99).toFixed(1).padStart(9)} |                   ${d(r.due.mail)} ${d(r.due.hook)} ${d(r.due.slack)} | ${String(r.dup).padStart(3)}  ${(r.queries === undefined ? '-' : r.queries.toFixed(1)).padStart(7)} |            ${r.cpu ? r.cpu.node.toFixed(1).padStart(6) : '     -'} ${(r.cpu?.pg ?? null) === null ? '    -' : r.cpu!.pg!.toFixed(1).padStart(5)} | ${r.cpu ? r.cpu.loopP99.toFixed(0).padStart(11) : '-'}`;
    };
    // Each row is printed when it is done too (a 10,000-reminder run takes long on a loaded machine).
    const done = (r: Row) => {
      rows.push(r);
      console.log(`[${new Date().toISOString()}] load ${loadavg()[0]!.toFixed(1)}  ${line(r)}`);
    };
    // Wall time per stage of an emit (CenterDeps.onStage), over the first center row.
    const stages = new Map<string, { n: number; ms: number }>();
    let collectStages = false;
    const onStage = (name: string, ms: number) => {
      if (!collectStages) return;
      const t = stages.get(name) ?? { n: 0, ms: 0 };
      t.n++;
      t.ms += ms;
      stages.set(name, t);
    };
    const backendPids = async () =>
      databaseUrl ? (await db.em.fork().getConnection().execute<Array<{ pid: number }>>('select pid from pg_stat_activity where datname = current_database()')).map((r) => Number(r.pid)) : [];
    let profile: string[] = [];
    let tookProfile: Array<[string, { n: number; ms: number }]> = [];
    const data = (i: number) => ({ host: `GPU box ${i}`, hostSlug: `gpu-${i}`, days: 7, daysText: '7 days', endsAt: Date.now() + 7 * 86_400_000, allocationId: randomUUID() });
    // On, and high enough that nothing is suppressed: the rate-limit query is part of the cost.
    const settings = { rateLimitPerHour: 1_000_000 };
    const load0 = loadavg()[0]!;

    for (const pooled of [true, false]) {
      const name = pooled ? 'center-pooled' : 'center-1session';
      if (!ROWS.includes(name)) continue;
      const mailer = createMailer(smtp.url, { pool: pooled, maxConnections: Number(process.env.BENCH_SMTP_POOL ?? 5) })!;
      const emit = createEmitter({ em: db.em, vault, logger, mailer, mailFrom: 'Hostflow <hostflow@bench>', notifySettings: settings, onStage });
      const run = randomUUID().slice(0, 8);
      // Warm-up (connections, link key, template lookups), then one profiled occurrence.
      await emit({ event: 'lease.reminder', key: `bench/${run}/warmup`, to: { userIds: [users[0]!] }, data: data(-1) });
      capture = [];
      await emit({ event: 'lease.reminder', key: `bench/${run}/profile`, to: { userIds: [users[0]!] }, data: data(-2) });
      if (!profile.length) profile = capture;
      capture = null;
      took.clear();
      collectStages = stages.size === 0;
      const pg0 = procCpuMs(await backendPids());
      const cpu0 = process.cpuUsage();
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const m0 = smtp.messages.length;
      const h0 = hook.accepted.length;
      const hr0 = hook.received.length;
      const p0 = slack.posts.length;
      const q0 = queries;
      let retries = 0;
      const r = await pool(N, C, async (i) => {
        const input = { event: 'lease.reminder' as const, key: `bench/${run}/${i}`, to: { userIds: [users[i % users.length]!] }, data: data(i) };
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
      const q = queries - q0;
      loop.disable();
      const cpu1 = process.cpuUsage(cpu0);
      const pg1 = procCpuMs(await backendPids());
      const pgMs = databaseUrl ? [...pg1].reduce((a, [pid, ms]) => a + ms - (pg0.get(pid) ?? 0), 0) : null;
      collectStages = false;
      const cpu = { node: (cpu1.user + cpu1.system) / 1000 / N, pg: pgMs === null ? null : pgMs / N, loopP99: loop.percentile(99) / 1e6 };
      if (!tookProfile.length) tookProfile = [...took].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
      if (retries) console.log(`${name}: ${retries} emit(s) retried (a channel failed once; see the send log)`);
      const raws = smtp.messages.slice(m0).map((m) => m.raw);
      const since = (xs: number[]) => xs.map((t) => t - r.t0);
      done({
        name, ...r, cpu, queries: q / N, mails: raws.length, hooks: hook.accepted.length - h0, posts: slack.posts.length - p0,
        dup: dupes(messageIds(raws)) + (hook.received.length - hr0 - (hook.accepted.length - h0)),
        due: { mail: since(mailTimes.slice(m0)), hook: since(hook.accepted.slice(h0).map((x) => x.at)), slack: since(slack.posts.slice(p0).map((x) => x.at)) },
      });
      mailer.close();
    }
    for (const pooled of [true, false]) {
      const name = pooled ? 'bare-pooled' : 'bare-1session';
      if (!ROWS.includes(name)) continue;
      const mailer = pooled ? createMailer(smtp.url, { pool: true })! : createTransport(smtp.url);
      const run = randomUUID().slice(0, 8);
      await mailer.sendMail({ from: 'hostflow@bench', to: 'bench@notify.test', subject: 'warm-up', text: 'x', messageId: `<${run}.w@bench>` });
      const m0 = smtp.messages.length;
      const cpu0 = process.cpuUsage();
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const r = await pool(N, C, async (i) => {
        await mailer.sendMail({ from: 'Hostflow <hostflow@bench>', to: `bench-${i % U}@notify.test`, subject: `Your lease of GPU box ${i} ends in 7 days`, text: `Your lease of host GPU box ${i} (gpu-${i}) ends on 2026-12-24 21:00.\nAsk your account manager to extend it.`, html: `<p>Your lease of host <b>GPU box ${i}</b> ends soon.</p>`, messageId: `<${run}.${i}@bench>` });
      });
      loop.disable();
      const cpu1 = process.cpuUsage(cpu0);
      const raws = smtp.messages.slice(m0).map((m) => m.raw);
      done({ name, ...r, cpu: { node: (cpu1.user + cpu1.system) / 1000 / N, pg: null, loopP99: loop.percentile(99) / 1e6 }, mails: raws.length, hooks: 0, posts: 0, dup: dupes(messageIds(raws)), due: { mail: mailTimes.slice(m0).map((t) => t - r.t0), hook: [], slack: [] } });
      mailer.close();
    }

    console.log(`\nnotify bench: ${N} lease reminders per row (${U} recipients), ${C} in flight, on ${db.kind}; load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (${(await import('node:os')).cpus().length} cores)\n`);
    if (profile.length) {
      console.log(`one occurrence's SQL (after warm-up; ${profile.length} statements):`);
      for (const s of profile) console.log(`  ${s}`);
      console.log('');
    }
    if (stages.size) {
      console.log('Wall time per stage of one emit, over the first center row (mean ms per call; concurrent emits overlap, so waiting shows here):');
      for (const [name, t] of [...stages].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${(t.ms / t.n).toFixed(1).padStart(8)} ms  ${String(t.n).padStart(6)}x  ${name}`);
      console.log('');
    }
    const loaders = Object.entries(sharedReads(db.em)).filter(([, l]) => l.stats.loads > 0);
    if (loaders.length) {
      console.log('Shared reads over the whole run (activities/notify/batch.ts): statements run for the keys concurrent emits asked');
      for (const [name, l] of loaders) console.log(`  ${name.padEnd(16)} ${String(l.stats.loads).padStart(7)} statements answered ${String(l.stats.asks).padStart(7)} asks (${(l.stats.asks / l.stats.loads).toFixed(1)} per statement, ${(l.stats.keys / l.stats.loads).toFixed(1)} distinct keys)`);
      console.log('');
    }
    if (tookProfile.length) {
      console.log('SQL time over the first center row, by statement (ms per occurrence, from send to result, queueing on the connection included):');
      for (const [q, t] of tookProfile) console.log(`  ${(t.ms / N).toFixed(1).padStart(7)} ms  ${String(t.n).padStart(6)}x  ${q}`);
      console.log('');
    }
    console.log(header);
    for (const r of rows) console.log(line(r));
    const cp = rows.find((r) => r.name === 'center-pooled');
    const bp = rows.find((r) => r.name === 'bare-pooled');
    if (cp && bp) console.log(`\ncenter pooled / bare pooled: mail throughput ${(cp.mails / cp.seconds / (bp.mails / bp.seconds)).toFixed(2)}x (the center also writes the send log and delivers inbox + webhook + Slack per occurrence)`);
    console.log('baseline before batching (bench/README.md, 300 reminders, loaded machine): center 3 occ/s on PGlite, 5 occ/s on PostgreSQL; bare nodemailer 49 / 120 mails/s');
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
