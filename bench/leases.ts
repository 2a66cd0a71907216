/**
 * Lease benchmark: many sleeping `lease` workflows on the dev server, then all their first
 * reminders due at the same moment.
 *
 *   npm run bench:leases                       # 10,000 leases, about 10 minutes
 *   BENCH_LEASES=500 npm run bench:leases      # smoke run
 *   BENCH_KILL_WORKER=1 npm run bench:leases   # SIGKILL the worker half-way through the burst, start a new one
 *   BENCH_DATABASE_URL=postgres://… npm run bench:leases   # a fresh database on that server
 *   BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:leases   # profile the worker
 *
 * Setup (not measured): a throwaway PostgreSQL cluster (fsync off) or a fresh database on
 * BENCH_DATABASE_URL, migrated; a real SMTP server (smtp-server) on loopback that keeps every
 * message; a Temporal dev server on a free port with its SQLite file in a temp dir, as `npm start`
 * runs it; BENCH_LEASES allocations, each on its own host row, for 50 customer users in different
 * time zones. The worker is the standalone production worker (`worker/main.ts`, real activities,
 * default settings) in its own process, so its RSS is its own.
 *
 * Figures:
 *   start     `client.workflow.start('lease')` for every allocation (64 in flight), as the
 *             allocation workflow starts them: id lease/<allocationId>, search attributes.
 *   asleep    worker RSS (VmRSS) once every lease has run its first task and sleeps on its timer
 *             (the worker's CPU idle), and its peak so far (VmHWM). Goal: <= 1 GB.
 *   storage   bytes per lease in PostgreSQL (allocations, lease_events, notifications: table +
 *             indexes) and in the dev server's SQLite file.
 *   burst     every lease's 7-day reminder is due at the same instant T (the lease ends at T + 7 d).
 *             From T: time to the first, 50 %, 99 % and last reminder recorded (lease_events
 *             row with notification `sent`) and mailed (received by the SMTP server); the
 *             worker's RSS peak.
 *   exactly once  rows per (allocation, kind), mails per allocation and per Message-ID, no other
 *             reminder kind fired. The goal is N rows, N mails, no duplicate.
 * Nothing is asserted: the script prints, and exits 1 only if it could not run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Connection } from '@temporalio/client';
import { createTemporalClient } from '../config/temporal.js';
import { formatKeyring, generateKeyring } from '../db/vault.js';
import { initORM, type Db } from '../db/orm.js';
import { AllocationSchema, CustomerSchema, HostSchema, UserSchema } from '../db/entities/index.js';
import { ensureTemporalCli, startDevServer, type DevServer } from '../scripts/temporal-cli.js';
import { createDatabase, startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { freePort } from '../test/helpers/sshd.js';
import { startSmtp } from '../test/helpers/smtp.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from '../workflows/shared/search-attributes.js';
import type { lease } from '../workflows/lease.workflow.js';
import { cleanUpOnExit } from './exit.js';

const N = Number(process.env.BENCH_LEASES ?? 10_000);
const KILL_WORKER = process.env.BENCH_KILL_WORKER === '1';
/** BENCH_DISPATCH=default: the dev server's own dispatch settings (the figures before scripts/temporal-cli.ts devServerDynamicConfig). */
const DISPATCH = process.env.BENCH_DISPATCH === 'default' ? 'default' : 'fast';
const START_CONCURRENCY = 64;
const FIRE_TIMEOUT_MS = Number(process.env.BENCH_FIRE_TIMEOUT_S ?? 900) * 1000;
const RSS_GOAL_BYTES = 1024 ** 3;
const DAY = 86_400_000;
const TASK_QUEUE = 'bench-leases';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TIMEZONES = ['Asia/Shanghai', 'Europe/Berlin', 'America/New_York', 'UTC', 'Asia/Kolkata'];

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const secs = (ms: number) => (ms / 1000).toFixed(2);
const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

// ---------------------------------------------------------------------------------------
// the worker process

let benchDir = '';
const children = new Set<ChildProcess>();

function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (benchDir) rmSync(benchDir, { recursive: true, force: true });
}
cleanUpOnExit(cleanupSync);

interface WorkerProc {
  child: ChildProcess;
  /** Resolves when it exits. */
  exited: Promise<number | null>;
}

/** The production worker (`worker/main.ts`) in one node process (tsx as a loader, not its own CLI process). */
async function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<WorkerProc> {
  // BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS).
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(ROOT, 'worker/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-8000);
      if (output.includes('"worker running"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`worker exited with ${code} before it ran:\n${output}`)));
    setTimeout(() => reject(new Error(`worker did not start within 120 s:\n${output}`)), 120_000).unref();
  });
  // Keep draining its output (pipes must not fill up); warnings and errors go to our stderr.
  child.stdout!.removeAllListeners('data');
  child.stderr!.removeAllListeners('data');
  child.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) log(`worker: ${line.slice(0, 400)}`);
  });
  child.stderr!.on('data', (d: Buffer) => log(`worker stderr: ${d.toString().trim().slice(0, 400)}`));
  return { child, exited };
}

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Waits until the process has used under 3 % of a CPU for 3 s in a row. */
async function waitIdle(pids: number[], timeoutMs: number): Promise<boolean> {
  const hz = 100;
  const deadline = Date.now() + timeoutMs;
  const total = () => pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
  let quiet = 0;
  let last = total();
  while (Date.now() < deadline) {
    await sleep(1000);
    const now = total();
    quiet = (now - last) / hz < 0.03 * pids.length ? quiet + 1 : 0;
    last = now;
    if (quiet >= 3) return true;
  }
  return false;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

const percentileTime = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  // The worker process and this client share one payload keyring, as API and worker do.
  const payloadKeys = generateKeyring('bench');
  if (!Number.isInteger(N) || N < 1) throw new Error(`BENCH_LEASES must be a positive integer, got ${process.env.BENCH_LEASES}`);
  const benchStarted = performance.now();
  benchDir = await mkdtemp(path.join(os.tmpdir(), 'hostflow-bench-leases-'));
  const dbName = `hostflow_bench_${randomBytes(4).toString('hex')}`;
  let cluster: TestPostgres | undefined;
  let adminUrl = '';
  let dbUrl = '';
  let db: Db | undefined;
  let smtp: Awaited<ReturnType<typeof startSmtp>> | undefined;
  let temporal: DevServer | undefined;
  let connection: Connection | undefined;
  let worker: WorkerProc | undefined;
  const temporalDb = path.join(benchDir, 'temporal.db');

  try {
    // --- setup (not measured) ------------------------------------------------------------
    let t = performance.now();
    const setup = await Promise.allSettled([
      (async () => {
        cluster = process.env.BENCH_DATABASE_URL ? undefined : await startPostgres();
        adminUrl = process.env.BENCH_DATABASE_URL ?? cluster!.url;
        dbUrl = await createDatabase(adminUrl, dbName);
        db = await initORM({ databaseUrl: dbUrl });
      })(),
      (async () => {
        smtp = await startSmtp();
      })(),
      (async () => {
        const cli = await ensureTemporalCli({ log });
        temporal = await startDevServer({ cli, port: await freePort(), uiPort: null, dbFile: temporalDb, dispatch: DISPATCH });
        children.add(temporal.process); // killed on Ctrl-C too
      })(),
    ]);
    const failed = setup.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    log(`PostgreSQL, SMTP and the Temporal dev server ready in ${secs(performance.now() - t)} s`);

    // N hosts (maintenance: the recheck schedule leaves them alone), one customer, 50 users, N allocations.
    t = performance.now();
    const em = db!.em.fork();
    const customerId = em.create(CustomerSchema, { name: 'Bench Corp', code: `bench-${randomBytes(3).toString('hex')}` }).id;
    const users = Array.from({ length: 50 }, (_, i) =>
      em.create(UserSchema, { username: `lease-user-${i}`, email: `lease-user-${i}@bench.test`, roles: ['customer_member'], customerId, timezone: TIMEZONES[i % TIMEZONES.length]! }).id,
    );
    await em.flush();
    const placeholderEnd = new Date(Date.now() + 30 * DAY);
    const allocations: Array<{ id: string; hostId: string }> = [];
    for (let from = 0; from < N; from += 1000) {
      const batch = db!.em.fork();
      for (let i = from; i < Math.min(N, from + 1000); i++) {
        const h = batch.create(HostSchema, { slug: `lease-${i}`, name: `GPU box ${i}`, address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'maintenance' });
        const a = batch.create(AllocationSchema, {
          host: h,
          customer: customerId,
          customerUser: users[i % users.length]!,
          osUsername: `c${i}`,
          startsAt: new Date(),
          endsAt: placeholderEnd,
          bufferSeconds: 3 * 86_400,
          graceSeconds: 3600,
          status: 'active',
          createdBy: 'bench',
        });
        allocations.push({ id: a.id, hostId: h.id });
      }
      await batch.flush();
    }
    log(`${N} hosts and allocations seeded in ${secs(performance.now() - t)} s`);

    const workerEnv: NodeJS.ProcessEnv = {
      ...process.env,
      HOSTFLOW_PAYLOAD_KEYS: formatKeyring(payloadKeys),
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      DATA_DIR: path.join(benchDir, 'data'),
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: temporal!.address,
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      SMTP_URL: smtp!.url,
      SMTP_FROM: 'Hostflow bench <bench@hostflow.test>',
      HOST_RECHECK_INTERVAL: '24h',
    };
    t = performance.now();
    worker = await startWorkerProcess(workerEnv);
    const idleMem = memoryOf(worker.child.pid!);
    log(`worker up in ${secs(performance.now() - t)} s, RSS ${mib(idleMem.rss)} with no workflow`);

    connection = await Connection.connect({ address: temporal!.address });
    const client = createTemporalClient({ connection, payloadKeys });

    // The moment every 7-day reminder is due: after the starts and their first tasks (estimated at
    // 25/s on the dev server's SQLite, plus a minute); BENCH_FIRE_DELAY_S overrides.
    const fireDelayMs = Number(process.env.BENCH_FIRE_DELAY_S ?? Math.max(60, Math.ceil(N / 25) + 60)) * 1000;
    const fireAt = Date.now() + fireDelayMs;
    const endsAtMs = fireAt + 7 * DAY;
    await em.getConnection().execute('update allocations set ends_at = ? where created_by = ?', [new Date(endsAtMs), 'bench']);

    // --- start ---------------------------------------------------------------------------
    t = performance.now();
    await pool(allocations, START_CONCURRENCY, async (a) => {
      await client.workflow.start<typeof lease>('lease', {
        workflowId: `lease/${a.id}`,
        taskQueue: TASK_QUEUE,
        args: [{ allocationId: a.id, hostId: a.hostId, customerId, endsAtMs, bufferMs: 3 * DAY, graceMs: 3_600_000 }],
        typedSearchAttributes: [
          { key: HostIdKey, value: a.hostId },
          { key: CustomerIdKey, value: customerId },
          { key: LifecycleStatusKey, value: 'active' },
        ],
      });
    });
    const startMs = performance.now() - t;
    log(`${N} leases started in ${secs(startMs)} s (${Math.round(N / (startMs / 1000))}/s); waiting for the worker and the server to go idle`);
    // Idle = the worker and the Temporal server both (the server may still be handing out first tasks).
    const idle = await waitIdle([worker.child.pid!, temporal!.process.pid!], Math.max(30_000, fireAt - Date.now() - 5_000));
    const settledMs = performance.now() - t;
    log(`settled ${secs(settledMs)} s after the first start${idle ? '' : ' (not idle before the deadline)'}`);
    const asleep = memoryOf(worker.child.pid!);
    // A sample of leases asked what they wait for (each query is a workflow task: after the RSS reading).
    const sample = Array.from({ length: 20 }, (_, i) => allocations[Math.floor((i * N) / 20)]!);
    const nextKinds = await Promise.all(
      sample.map(async (a) => {
        try {
          return (await client.workflow.getHandle(`lease/${a.id}`).query<{ next: { kind: string } | null }>('state')).next?.kind ?? 'none';
        } catch (err) {
          return `query failed (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`;
        }
      }),
    );
    const sqliteAsleep = statSync(temporalDb).size;
    const leftBeforeFire = fireAt - Date.now();

    // --- burst ---------------------------------------------------------------------------
    if (leftBeforeFire > 0) {
      log(`all asleep; the ${N} reminders fire in ${secs(leftBeforeFire)} s`);
      await sleep(leftBeforeFire);
    }
    const pgc = new pg.Client({ connectionString: dbUrl });
    await pgc.connect();
    const recordedAt: number[] = [];
    const mailedAt: number[] = [];
    let peakDuringBurst = asleep.peak;
    let killed: { atMs: number; restartMs: number } | undefined;
    const burstStart = Date.now();
    // CPU seconds spent over the burst by each side (the bench process runs the SMTP server).
    const cpuAt = () => ({ worker: cpuTicks(worker!.child.pid!) / 100, server: cpuTicks(temporal!.process.pid!) / 100, bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 });
    const cpuStart = cpuAt();
    const deadline = burstStart + FIRE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const { rows } = await pgc.query<{ n: string }>(`select count(*) as n from lease_events where kind = 'reminder-7d' and notification = 'sent'`);
      const recorded = Number(rows[0]!.n);
      const now = Date.now() - burstStart;
      while (recordedAt.length < recorded) recordedAt.push(now);
      while (mailedAt.length < Math.min(smtp!.messages.length, N)) mailedAt.push(now);
      if (worker.child.exitCode === null) peakDuringBurst = Math.max(peakDuringBurst, memoryOf(worker.child.pid!).peak);
      if (KILL_WORKER && !killed && recorded >= N / 2) {
        const k = Date.now() - burstStart;
        worker.child.kill('SIGKILL');
        await worker.exited;
        const r = performance.now();
        worker = await startWorkerProcess(workerEnv);
        killed = { atMs: k, restartMs: performance.now() - r };
        log(`worker killed (SIGKILL) at +${secs(k)} s with ${recorded} reminders recorded; a new one ran ${secs(killed.restartMs)} s later`);
      }
      if (recorded >= N && smtp!.messages.length >= N) break;
      await sleep(250);
    }
    const burstMs = Date.now() - burstStart;
    const cpuEnd = worker.child.exitCode === null ? cpuAt() : undefined;
    if (worker.child.exitCode === null) peakDuringBurst = Math.max(peakDuringBurst, memoryOf(worker.child.pid!).peak);
    const afterBurst = worker.child.exitCode === null ? memoryOf(worker.child.pid!) : undefined;
    await sleep(3000); // late duplicates, if any, would arrive now

    // --- exactly once --------------------------------------------------------------------
    const perKind = await pgc.query<{ kind: string; rows: string; allocations: string; sent: string }>(
      `select kind, count(*) as rows, count(distinct allocation_id) as allocations, count(*) filter (where notification = 'sent') as sent from lease_events group by kind order by kind`,
    );
    const notif = await pgc.query<{ rows: string; keys: string; sent: string }>(
      `select count(*) as rows, count(distinct event_key) as keys, count(*) filter (where status = 'sent') as sent from notifications where event_key like 'lease/%'`,
    );
    const sizes = await pgc.query<{ name: string; bytes: string }>(
      `select relname as name, pg_total_relation_size(c.oid) as bytes from pg_class c where relname in ('allocations', 'lease_events', 'notifications') and relkind = 'r'`,
    );
    await pgc.end();
    const mailAllocations = new Map<string, number>();
    const messageIds = new Map<string, number>();
    for (const m of smtp!.messages) {
      const raw = m.raw.replace(/=\r?\n/g, '');
      const id = /Allocation: ([0-9a-f-]{36})/.exec(raw)?.[1] ?? '?';
      mailAllocations.set(id, (mailAllocations.get(id) ?? 0) + 1);
      const mid = /^Message-ID:\s*(<[^>\s]+>)/im.exec(raw)?.[1] ?? '?';
      messageIds.set(mid, (messageIds.get(mid) ?? 0) + 1);
    }
    const sqliteAfter = statSync(temporalDb).size;

    // --- report --------------------------------------------------------------------------
    const sortedRec = [...recordedAt].sort((a, b) => a - b);
    const sortedMail = [...mailedAt].sort((a, b) => a - b);
    const at = (xs: number[], q: number) => (xs.length ? `${secs(percentileTime(xs, q))} s` : '-');
    const bytes = Object.fromEntries(sizes.rows.map((r) => [r.name, Number(r.bytes)]));
    console.log('');
    console.log(`lease benchmark: ${N} leases, dev server (SQLite file, dispatch ${DISPATCH}), PostgreSQL ${process.env.BENCH_DATABASE_URL ? '(BENCH_DATABASE_URL)' : '(throwaway cluster, fsync off)'}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('');
    console.log(`start      ${N} lease workflows started in ${secs(startMs)} s (${(N / (startMs / 1000)).toFixed(0)}/s, ${START_CONCURRENCY} in flight); worker idle ${secs(settledMs)} s after the first start${idle ? '' : ' (NOT idle before the timeout)'}`);
    console.log(`           sampled leases waiting for: ${[...new Set(nextKinds)].join(', ')} (${nextKinds.filter((k) => k === 'reminder-7d').length}/${sample.length} reminder-7d)`);
    console.log(`asleep     worker RSS ${mib(asleep.rss)} with all ${N} leases asleep (${mib(idleMem.rss)} with none; peak so far ${mib(asleep.peak)}); goal <= ${mib(RSS_GOAL_BYTES)}: ${asleep.peak <= RSS_GOAL_BYTES ? 'met' : 'NOT met'}`);
    console.log(`storage    PostgreSQL bytes per lease: allocations ${((bytes.allocations ?? 0) / N).toFixed(0)}, lease_events ${((bytes.lease_events ?? 0) / N).toFixed(0)}, notifications ${((bytes.notifications ?? 0) / N).toFixed(0)} (tables + indexes, after the burst)`);
    console.log(`           Temporal SQLite bytes per lease: ${(sqliteAsleep / N).toFixed(0)} asleep, ${(sqliteAfter / N).toFixed(0)} after the burst (whole file, WAL not included)`);
    if (leftBeforeFire <= 0) console.log(`           WARNING: the leases were still starting when the reminders fell due (${secs(-leftBeforeFire)} s late): raise BENCH_FIRE_DELAY_S`);
    console.log(`burst      all ${N} reminders due at T. From T: recorded first ${at(sortedRec, 0)}, 50% ${at(sortedRec, 0.5)}, 99% ${at(sortedRec, 0.99)}, all ${recordedAt.length >= N ? at(sortedRec, 1) : `NOT (${recordedAt.length}/${N} in ${secs(burstMs)} s)`}`);
    console.log(`           mailed  first ${at(sortedMail, 0)}, 50% ${at(sortedMail, 0.5)}, 99% ${at(sortedMail, 0.99)}, all ${mailedAt.length >= N ? at(sortedMail, 1) : `NOT (${mailedAt.length}/${N})`}; ${(N / (burstMs / 1000)).toFixed(0)} reminders/s over the burst`);
    if (cpuEnd && !killed) {
      const c = (k: 'worker' | 'server' | 'bench') => `${(cpuEnd[k] - cpuStart[k]).toFixed(1)} s`;
      console.log(`           CPU over the burst (${secs(burstMs)} s wall, ${os.cpus().length} CPUs): Temporal dev server ${c('server')}, worker ${c('worker')}, bench + SMTP server ${c('bench')}`);
    }
    console.log(`           worker RSS peak ${mib(peakDuringBurst)}${afterBurst ? `, ${mib(afterBurst.rss)} after` : ''}${killed ? `; worker SIGKILLed at +${secs(killed.atMs)} s, replacement running ${secs(killed.restartMs)} s later` : ''}`);
    const dupMails = [...mailAllocations.values()].filter((n) => n > 1).length;
    const dupIds = [...messageIds.values()].filter((n) => n > 1).length;
    const r7 = perKind.rows.find((r) => r.kind === 'reminder-7d');
    const others = perKind.rows.filter((r) => r.kind !== 'reminder-7d');
    const n = notif.rows[0]!;
    const recordedOnce = Number(r7?.rows ?? 0) === N && Number(r7?.allocations ?? 0) === N && Number(r7?.sent ?? 0) === N && others.length === 0 && Number(n.rows) === N && Number(n.keys) === N;
    const mailedOnce = smtp!.messages.length === N && mailAllocations.size === N && dupMails === 0;
    const exact = recordedOnce && mailedOnce;
    console.log(`exactly    lease_events reminder-7d: ${r7?.rows ?? 0} rows for ${r7?.allocations ?? 0} allocations, ${r7?.sent ?? 0} sent; other kinds: ${others.length ? others.map((o) => `${o.kind} ${o.rows}`).join(', ') : 'none'}`);
    console.log(`once       notifications: ${n.rows} rows, ${n.keys} event keys, ${n.sent} sent; SMTP received ${smtp!.messages.length} mails for ${mailAllocations.size} allocations, ${dupMails} allocations mailed twice, ${dupIds} Message-IDs seen twice`);
    console.log(`           every reminder exactly once: ${exact ? 'yes' : 'NO'}`);
    if (!exact) {
      console.log(`           recorded exactly once: ${recordedOnce ? 'yes' : 'NO'}; mailed exactly once: ${mailedOnce ? 'yes' : 'NO'}`);
      if (recordedOnce && killed && mailAllocations.size === N && dupMails > 0 && dupIds === dupMails) {
        console.log(`           the ${dupMails} second cop${dupMails === 1 ? 'y' : 'ies'} carr${dupMails === 1 ? 'ies' : 'y'} the first's Message-ID: sent, then the worker was killed before it recorded the send, and the retry sent again (mail systems drop a repeated Message-ID)`);
      }
    }
    // What one reminder costs in Temporal: the events from its TimerFired to the next TimerStarted
    // (the lease then sleeps to the 3-day reminder), from one sampled lease's history.
    {
      const events = (await client.workflow.getHandle(`lease/${allocations[0]!.id}`).fetchHistory()).events ?? [];
      const fired = events.findIndex((e) => e.timerFiredEventAttributes);
      const next = events.findIndex((e, i) => i > fired && e.timerStartedEventAttributes);
      const slice = fired >= 0 && next > fired ? events.slice(fired, next + 1) : [];
      const count = (pick: (e: (typeof events)[number]) => unknown) => slice.filter((e) => pick(e) != null).length;
      console.log(
        `cost       one reminder in lease/${allocations[0]!.id}'s history (TimerFired → next TimerStarted): ${slice.length} events, ${count((e) => e.workflowTaskStartedEventAttributes)} workflow tasks, ` +
          `${count((e) => e.activityTaskScheduledEventAttributes)} dispatched activity tasks, ${count((e) => e.markerRecordedEventAttributes)} markers (local activity / patch)`,
      );
    }
    console.log(`total bench time ${secs(performance.now() - benchStarted)} s (setup included)`);
  } finally {
    if (worker && worker.child.exitCode === null) {
      worker.child.kill('SIGTERM');
      await Promise.race([worker.exited, sleep(40_000)]);
    }
    await connection?.close().catch(() => undefined);
    await temporal?.stop();
    await smtp?.stop();
    await db?.close();
    await sleep(200);
    if (adminUrl && db) {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`drop database if exists ${dbName} with (force)`).catch((err: Error) => log(`could not drop ${dbName}: ${err.message}`));
      await admin.end();
    }
    await cluster?.stop();
    await rm(benchDir, { recursive: true, force: true });
  }
}

await main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

