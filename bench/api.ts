/**
 * API overhead benchmark: the platform (Express 5 + middleware + zod + MikroORM + real session
 * authentication) against a bare Express 5 + `pg` server sending the same SQL and the same bodies.
 *
 *   npm run bench:api                          # everything below, about 10 minutes
 *   BENCH_DURATION=3 BENCH_SOAK=5 npm run bench:api   # smoke run
 *   BENCH_SECTIONS=rate,closed npm run bench:api      # some sections only (rate, closed, soak, cluster, pglite)
 *   BENCH_ENDPOINTS=hosts,healthz npm run bench:api   # some endpoints only
 *   BENCH_DATABASE_URL=postgres://… npm run bench:api # that server instead of a throwaway cluster
 *   BENCH_CPU_PROFILE=/tmp/prof npm run bench:api     # V8 CPU profile of the platform's measured runs
 *
 * Authentication is real on both sides: each connection carries a JWT access token of its own
 * session (1000 users, one session each). The platform verifies the token (jose), reads the
 * session joined with its user (one primary-key lookup: a kick-out is seen on the next request)
 * and refreshes last_seen_at at most every 5 s per session. The bare server does exactly that with
 * the same SQL, then the list query the platform sends, and writes the same envelope; the script
 * checks once per endpoint that both bodies are byte-identical.
 *
 * Sections (each run: 2 s warm-up, then BENCH_DURATION s, never two at once; platform and bare
 * of one endpoint in alternating ~2 s slices, so outside load falls on both alike):
 *   rate     500 req/s offered over 50 connections (10 req/s per connection, evenly spaced), per endpoint
 *   closed   closed loop (each connection sends its next request when the answer arrives), 50 and 200 connections
 *   soak     1000 keep-alive connections, each its own session, on the hosts list for BENCH_SOAK s (30)
 *   cluster  the platform in 1 and in 2 processes (node:cluster, one port) on PostgreSQL, closed loop 200
 *   pglite   the platform's hosts list on PGlite (the embedded default) vs on PostgreSQL, rate and closed 50
 *
 * The load generator is this file's own (runLoad): plain keep-alive sockets with prebuilt requests,
 * in a worker thread so it has its own event loop. Latency = request written → response complete,
 * per request; percentiles are nearest-rank over every 2xx sample.
 *
 * The machine is shared (2 cores for PostgreSQL, both servers and the load generator): read the
 * ratios of the platform to bare measured side by side, not the absolute figures.
 */
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { Session as InspectorSession } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { LoadJob, LoadResult } from './load-worker.js';
import express, { type Express } from 'express';
import pg from 'pg';
import { Connection } from '@temporalio/client';
import { createTemporalClient } from '../config/temporal.js';
import { initORM, type Db } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  CustomerSchema,
  HOLDING_ALLOCATION_STATUSES,
  HostCredentialSchema,
  HostSchema,
  SessionSchema,
  UserSchema,
  type HostFacts,
} from '../db/entities/index.js';
import { appendAudit } from '../db/audit/service.js';
import { encodeCursor } from '../db/audit/query.js';
import { createApp } from '../api/app.js';
import { identityDefaults, type IdentityDeps } from '../api/deps.js';
import { DEFAULT_AUTH_SETTINGS } from '../config/auth.js';
import { SESSION_AUTH_SQL } from '../api/middleware/auth.js';
import { signAccessToken, verifyAccessToken } from '../api/routes/auth/tokens.js';
import { credentialContext } from '../activities/remote/host-targets.js';
import { createLogger } from '../config/logger.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';

const RATE = 500;
const RATE_CONNECTIONS = 50;
const WARMUP_S = 2;
const HOSTS = 200;
const SESSIONS = 1000;

const ENDPOINTS = {
  healthz: '/healthz',
  hosts: '/api/v1/hosts?page=1&page_size=20',
  allocations: '/api/v1/allocations?page=1&page_size=20',
  'account-openings': '/api/v1/account-openings?page=1&page_size=20',
  customers: '/api/v1/customers?page=1&page_size=20',
  'audit-events': '/api/v1/audit-events?limit=50',
} as const;
type EndpointName = keyof typeof ENDPOINTS;

// ---------------------------------------------------------------------------------------
// load generator: bench/load-worker.ts, in a worker thread (a small module: a worker that loaded
// this file would import the whole platform first)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One run in a worker thread, then a pause for the server to finish the last requests. */
async function load(job: LoadJob): Promise<LoadResult> {
  const result = await new Promise<LoadResult>((resolve, reject) => {
    const w = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: job });
    let r: LoadResult | undefined;
    w.once('message', (m: LoadResult) => (r = m));
    w.once('error', reject);
    w.once('exit', (code) => (r ? resolve(r) : reject(new Error(`load worker exited with code ${code} and no result`))));
  });
  await sleep(300);
  return result;
}

// ---------------------------------------------------------------------------------------
// the bare server: Express 5 + pg, the platform's SQL, the platform's envelope

const $n = (sql: string) => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};
const BARE_SESSION_SQL = $n(SESSION_AUTH_SQL);
const HELD = HOLDING_ALLOCATION_STATUSES.map((s) => `'${s}'`).join(', ');
const BARE_SQL: Record<Exclude<EndpointName, 'healthz'>, string> = {
  hosts: `select h.*, count(*) over () as total, exists (select 1 from host_credentials c where c.host_id = h.id) as has_credentials, exists (select 1 from allocations a where a.host_id = h.id and a.status in (${HELD})) as allocated from hosts h order by h.created_at desc, h.id asc limit $1 offset $2`,
  allocations: `select a.*, count(*) over () as total, h.slug as h_slug, h.name as h_name, c.code as c_code, c.name as c_name, u.username as u_username from allocations a left join hosts h on h.id = a.host_id left join customers c on c.id = a.customer_id left join users u on u.id = a.customer_user_id order by a.created_at desc, a.id asc limit $1 offset $2`,
  'account-openings': `select r.*, count(*) over () as total, h.slug as h_slug, h.os as h_os, u.username as u_username from account_opening_requests r left join hosts h on h.id = r.host_id left join users u on u.id = r.applicant_id order by r.created_at desc, r.id asc limit $1 offset $2`,
  customers: `select c.*, count(*) over () as total from customers c order by c.created_at desc, c.id asc limit $1 offset $2`,
  'audit-events': `select * from audit_events order by at desc, id desc limit $1`,
};

type R = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- raw pg rows
const iso = (d: Date | null) => d?.toISOString() ?? null;
const BARE_DTO: Record<Exclude<EndpointName, 'healthz' | 'audit-events'>, (r: R) => unknown> = {
  hosts: (h) => ({
    id: h.id,
    slug: h.slug,
    name: h.name,
    address: h.address,
    port: h.port,
    os: h.os,
    username: h.username,
    site: h.site,
    group: h.group,
    tags: h.tags,
    status: h.status,
    facts: h.facts,
    expected_gpu: h.expected_gpu,
    template_id: h.template_id,
    owner_tenant: h.owner_tenant,
    account_policy: h.account_policy ? { allow_admin: !!h.account_policy.allowAdmin, allow_groups: h.account_policy.allowGroups ?? [], privileged_by: h.account_policy.privilegedBy ?? 'staff' } : null,
    host_key_fingerprint: h.host_key_fingerprint,
    has_credentials: h.has_credentials,
    allocated: h.allocated,
    last_seen_at: iso(h.last_seen_at),
    created_at: h.created_at.toISOString(),
  }),
  allocations: (a) => ({
    id: a.id,
    status: a.status,
    host: { id: a.host_id, slug: a.h_slug, name: a.h_name },
    customer: { id: a.customer_id, code: a.c_code, name: a.c_name },
    customer_user: { id: a.customer_user_id, username: a.u_username },
    os_username: a.os_username,
    starts_at: a.starts_at.toISOString(),
    ends_at: a.ends_at.toISOString(),
    buffer_days: a.buffer_seconds / 86_400,
    grace_minutes: a.grace_seconds / 60,
    failed_step: a.failed_step,
    error: a.error,
    terminate_reason: a.terminate_reason,
    notes: a.notes,
    reclaimed_at: iso(a.reclaimed_at),
    workflow_ids: { allocation: `allocation/${a.id}`, lease: `lease/${a.id}`, reclaim: `reclaim/${a.id}`, host_lock: `host-lock/${a.host_id}` },
    created_by: a.created_by,
    created_at: a.created_at.toISOString(),
  }),
  'account-openings': (r) => ({
    id: r.id,
    status: r.status,
    applicant: { id: r.applicant_id, username: r.u_username },
    contact_email: r.contact_email,
    contact_phone: r.contact_phone,
    username: r.username,
    full_name: r.full_name,
    user_email: r.user_email,
    description: r.description,
    host: { id: r.host_id, slug: r.h_slug, os: r.h_os },
    groups: r.groups,
    is_admin: r.is_admin,
    approved_by: r.approved_by_id,
    decided_at: iso(r.decided_at),
    approval_notes: r.approval_notes,
    reject_reason: r.reject_reason,
    result_message: r.result_message,
    failure_type: r.failure_type,
    host_account_id: r.host_account_id,
    workflow_id: r.workflow_id,
    expires_at: r.expires_at.toISOString(),
    created_at: r.created_at.toISOString(),
  }),
  customers: (c) => ({ id: c.id, name: c.name, code: c.code, contact_name: c.contact_name, contact_email: c.contact_email, contact_phone: c.contact_phone, notes: c.notes, reminder_offsets: c.reminder_offsets, created_at: c.created_at.toISOString() }),
};
const auditItem = (e: R) => ({
  id: e.id,
  seq: e.seq === null ? null : Number(e.seq),
  at: e.at.toISOString(),
  actor: e.actor,
  actor_type: e.actor_type,
  actor_id: e.actor_id,
  action: e.action,
  target_type: e.target_type,
  target_id: e.target_id,
  result: e.result,
  reason: e.reason,
  ip: e.ip,
  user_agent: e.user_agent,
  request_id: e.request_id,
  before: e.before,
  after: e.after,
  detail: e.detail,
  prev_hash: e.prev_hash,
  hash: e.hash,
});

function createBareApp(pool: pg.Pool, identity: IdentityDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const fail = (res: express.Response, status: number, code: number, message: string) => res.status(status).json({ code, message, data: null });

  app.get('/healthz', (_req, res) => {
    res.json({ code: 0, message: 'ok', data: { status: 'up' } });
  });

  /** The platform's authentication work: verify the JWT, read session + user, refresh last-seen every 5 s. */
  const authenticate = async (req: express.Request): Promise<boolean> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const claims = await verifyAccessToken(identity, m[1]!);
    if (!claims) return false;
    const s = (await pool.query<R>(BARE_SESSION_SQL, [claims.sessionId, claims.userId])).rows[0];
    if (!s || s.revoked || !s.user_id) return false;
    const now = Date.now();
    if (now - s.last_seen_ms > 5_000) await pool.query('update "sessions" set "last_seen_at" = $1 where "id" = $2', [new Date(now), s.id]);
    return true;
  };

  const page = (req: express.Request) => {
    const p = Number(req.query.page ?? 1);
    const size = Number(req.query.page_size ?? 20);
    return Number.isInteger(p) && p >= 1 && Number.isInteger(size) && size >= 1 && size <= 200 ? { page: p, size } : null;
  };

  for (const name of ['hosts', 'allocations', 'account-openings', 'customers'] as const) {
    app.get(ENDPOINTS[name].split('?')[0]!, async (req, res) => {
      if (!(await authenticate(req))) return fail(res, 401, 40101, 'authentication required');
      const q = page(req);
      if (!q) return fail(res, 400, 40001, 'page / page_size invalid');
      const rows = (await pool.query<R>(BARE_SQL[name], [q.size, (q.page - 1) * q.size])).rows;
      const total = rows.length ? Number(rows[0]!.total) : 0;
      res.json({ code: 0, message: 'ok', data: { items: rows.map(BARE_DTO[name]), total, page: q.page, page_size: q.size, pages: Math.ceil(total / q.size) } });
    });
  }
  app.get('/api/v1/audit-events', async (req, res) => {
    if (!(await authenticate(req))) return fail(res, 401, 40101, 'authentication required');
    const limit = Number(req.query.limit ?? 50);
    const rows = (await pool.query<R>(BARE_SQL['audit-events'], [limit + 1])).rows;
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    res.json({ code: 0, message: 'ok', data: { items: items.map(auditItem), next_cursor: rows.length > limit && last ? encodeCursor({ at: last.at, id: last.id }) : null } });
  });
  return app;
}

// ---------------------------------------------------------------------------------------
// data

function seedFacts(i: number): HostFacts | null {
  if (i % 4 === 3) return null; // never contacted yet
  const gpus = i % 2 === 0 ? 8 : 4;
  return {
    cpu: { model: 'AMD EPYC 7763 64-Core Processor', cores: 128, sockets: 2, threadsPerCore: 2 },
    memoryBytes: 1024 * 1024 ** 3,
    disks: [{ name: 'nvme0n1', sizeBytes: 3.84e12, model: 'SAMSUNG MZQL23T8HCLS', rotational: false }],
    gpus: Array.from({ length: gpus }, (_, g) => ({ index: g, model: i % 3 ? 'NVIDIA H100 80GB HBM3' : 'NVIDIA A100-SXM4-80GB', memoryMiB: 81559, driver: '550.54.15' })),
    cuda: '12.4',
    os: { name: 'Ubuntu', version: '22.04', kernel: '5.15.0-105-generic' },
    hostname: `gpu-${String(i).padStart(3, '0')}`,
    collectedAt: new Date(Date.UTC(2026, 10, 1)).toISOString(),
  };
}

/** 200 hosts (half with a credential), 40 customers, 100 allocations, 200 account openings, 300 audit events, `sessions` admin sessions. */
async function seed(db: Db, identity: IdentityDeps, sessions: number, full: boolean): Promise<string[]> {
  const vault = new Vault(generateKeyring('bench'));
  const em = db.em.fork();
  const t0 = Date.UTC(2026, 9, 1);
  const hosts = [];
  for (let i = 0; i < HOSTS; i++) {
    const linux = i % 5 !== 4;
    const host = em.create(HostSchema, {
      slug: `gpu-${String(i).padStart(3, '0')}`,
      name: `GPU server ${i}`,
      address: `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      port: linux ? 22 : 5986,
      os: linux ? 'linux' : 'windows',
      username: linux ? 'ops' : 'Administrator',
      site: ['fra1', 'ams2', 'sin1'][i % 3]!,
      tags: ['gpu', i % 2 ? 'h100' : 'a100'],
      status: i % 4 === 3 ? 'pending' : 'online',
      facts: seedFacts(i),
      lastSeenAt: i % 4 === 3 ? null : new Date(t0 + i * 3_600_000),
      createdAt: new Date(t0 + i * 60_000),
    });
    hosts.push(host);
    if (i % 2 === 0) {
      const kind = linux ? 'password' : 'winrm-password';
      const { ciphertext, keyId } = vault.encrypt(`pw-${randomBytes(9).toString('base64url')}`, credentialContext(host.id, kind));
      em.create(HostCredentialSchema, { host, kind, ciphertext, keyId });
    }
  }
  const users = Array.from({ length: sessions }, (_, i) => em.create(UserSchema, { username: `bench-${String(i).padStart(4, '0')}`, roles: ['admin'], email: `bench${i}@example.com` }));
  if (full) {
    const customers = Array.from({ length: 40 }, (_, i) =>
      em.create(CustomerSchema, { name: `Customer ${i}`, code: `cust-${i}`, contactName: `Contact ${i}`, contactEmail: `c${i}@example.com`, contactPhone: '13812341234', createdAt: new Date(t0 + i * 60_000) }),
    );
    const members = customers.map((c, i) => em.create(UserSchema, { username: `member-${i}`, roles: ['customer_owner'], customerId: c.id }));
    for (let i = 0; i < 100; i++) {
      const statuses = ['active', 'buffer', 'provisioning', 'active'] as const;
      em.create(AllocationSchema, {
        host: hosts[i * 2]!,
        customer: customers[i % 40]!,
        customerUser: members[i % 40]!,
        osUsername: `renter${i}`,
        startsAt: new Date(t0),
        endsAt: new Date(t0 + 30 * 86_400_000),
        bufferSeconds: 3 * 86_400,
        graceSeconds: 600,
        status: statuses[i % 4]!,
        createdBy: 'bench',
        createdAt: new Date(t0 + i * 60_000),
      });
    }
    for (let i = 0; i < 200; i++) {
      em.create(AccountOpeningRequestSchema, {
        applicant: users[i % users.length]!,
        contactEmail: `applicant${i}@example.com`,
        contactPhone: '13912345678',
        username: `user${i}`,
        fullName: `Applicant ${i}`,
        host: hosts[i]!,
        groups: ['docker'],
        status: (['pending', 'approved', 'done', 'rejected'] as const)[i % 4]!,
        workflowId: `account-opening/bench-${i}`,
        expiresAt: new Date(t0 + 7 * 86_400_000),
        createdAt: new Date(t0 + i * 60_000),
      });
    }
  }
  await em.flush();
  if (full) for (let i = 0; i < 300; i++) await appendAudit(db.em, { actor: 'bench', actorType: 'user', action: 'host.update', targetType: 'host', targetId: hosts[i % HOSTS]!.id, detail: { i }, at: new Date(t0 + i * 1000) });
  const now = new Date();
  const rows = users.map((u) => em.create(SessionSchema, { userId: u.id, lastSeenAt: now, userAgent: 'bench', ip: '127.0.0.1' }));
  await em.flush();
  return Promise.all(rows.map(async (s) => (await signAccessToken(identity, { userId: s.userId, sessionId: s.id })).token));
}

// ---------------------------------------------------------------------------------------
// servers

function listen(app: Express, port = 0): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', (err?: Error) => {
      if (err) return reject(err);
      resolve({ server, port: (server.address() as { port: number }).port });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const benchIdentity = (jwtKey?: Uint8Array) =>
  // Tokens outlive the run (15 min by default); everything else is the default policy.
  identityDefaults({ settings: { ...DEFAULT_AUTH_SETTINGS, accessTokenMinutes: 240 }, ...(jwtKey ? { jwtKey } : {}) });

function platformApp(db: Db, identity: IdentityDeps, connection: Connection): Express {
  return createApp({
    em: db.em,
    vault: new Vault(generateKeyring('bench')),
    logger: createLogger({ level: 'silent' }),
    temporal: { client: createTemporalClient({ connection, payloadKeys: generateKeyring('bench') }), taskQueue: 'bench' },
    settings: { accountOpeningExpiryDays: 7 },
    checks: { db: () => db.ping(), temporal: async () => undefined },
    identity,
  });
}

/** A cluster worker: one platform process on BENCH_DB_URL, listening on BENCH_PORT (shared). */
async function clusterWorker(): Promise<void> {
  const db = await initORM({ databaseUrl: process.env.BENCH_DB_URL! }, { migrate: false });
  const identity = benchIdentity(Buffer.from(process.env.BENCH_JWT_KEY!, 'hex'));
  const connection = Connection.lazy({ address: '127.0.0.1:7233' });
  await listen(platformApp(db, identity, connection), Number(process.env.BENCH_PORT));
  process.send!('ready');
}

async function startCluster(n: number, env: Record<string, string>): Promise<{ port: number; stop: () => Promise<void> }> {
  const probe = net.createServer();
  const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as net.AddressInfo).port)));
  await new Promise<void>((r) => probe.close(() => r()));
  cluster.setupPrimary({ exec: new URL(import.meta.url).pathname, silent: false });
  const workers = Array.from({ length: n }, () => cluster.fork({ ...env, BENCH_CLUSTER_WORKER: '1', BENCH_PORT: String(port) }));
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('exit', (code) => reject(new Error(`cluster worker exited with ${code}`)));
  })));
  return {
    port,
    stop: async () => {
      await Promise.all(workers.map((w) => new Promise<void>((r) => {
        w.removeAllListeners('exit');
        w.once('exit', () => r());
        w.kill('SIGTERM');
      })));
    },
  };
}

// ---------------------------------------------------------------------------------------
// report

interface Row {
  label: string;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  rps: number;
  r: LoadResult;
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summarize(label: string, r: LoadResult): Row {
  const sorted = r.latencies.slice().sort();
  return { label, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : NaN, rps: r.completed / r.duration, r };
}

const ms = (v: number) => v.toFixed(2).padStart(9);
const HEADER = `${'run'.padEnd(44)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}${'req/s'.padStart(8)}${'non-2xx'.padStart(9)}${'5xx'.padStart(6)}${'errors'.padStart(8)}`;
const line = (r: Row) =>
  `${r.label.padEnd(44)}${ms(r.p50)}${ms(r.p95)}${ms(r.p99)}${ms(r.max)}${r.rps.toFixed(0).padStart(8)}${String(r.r.non2xx).padStart(9)}${String(r.r.status5xx).padStart(6)}${String(r.r.errors).padStart(8)}`;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

let profiler: InspectorSession | undefined;
async function measured<T>(profile: boolean, fn: () => Promise<T>): Promise<T> {
  if (!profile || !profiler) return fn();
  await profiler.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile: p } = await profiler.post('Profiler.stop');
    const dir = process.env.BENCH_CPU_PROFILE!;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/platform-${Date.now()}.cpuprofile`, JSON.stringify(p));
  }
}

async function main(): Promise<void> {
  const duration = Number(process.env.BENCH_DURATION ?? 10);
  const soak = Number(process.env.BENCH_SOAK ?? 30);
  if (!Number.isFinite(duration) || duration < 1) throw new Error(`BENCH_DURATION must be a number of seconds >= 1, got ${process.env.BENCH_DURATION}`);
  const sections = new Set((process.env.BENCH_SECTIONS ?? 'rate,closed,soak,cluster,pglite').split(','));
  const endpoints = (process.env.BENCH_ENDPOINTS?.split(',') ?? Object.keys(ENDPOINTS)) as EndpointName[];
  for (const e of endpoints) if (!(e in ENDPOINTS)) throw new Error(`BENCH_ENDPOINTS: unknown endpoint ${e} (known: ${Object.keys(ENDPOINTS).join(', ')})`);
  if (process.env.BENCH_CPU_PROFILE) {
    profiler = new InspectorSession();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
  }

  const cluster_ = process.env.BENCH_DATABASE_URL ? undefined : await startPostgres();
  const adminUrl = process.env.BENCH_DATABASE_URL ?? cluster_!.url;
  const dbName = `hostflow_bench_${randomBytes(4).toString('hex')}`;
  const databaseUrl = await createDatabase(adminUrl, dbName);
  const db = await initORM({ databaseUrl });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 }); // the ORM's pool size (db/mikro-orm.config.ts)
  pool.on('error', () => undefined);
  const connection = Connection.lazy({ address: '127.0.0.1:7233' });
  const servers: Server[] = [];
  let pglite: Db | undefined;
  try {
    const identity = benchIdentity();
    const tokens = await seed(db, identity, SESSIONS, true);
    const platform = await listen(platformApp(db, identity, connection));
    servers.push(platform.server);
    const bare = await listen(createBareApp(pool, identity));
    servers.push(bare.server);

    const get = async (port: number, path: string) => (await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${tokens[0]}` } })).text();
    const pgVersion = (await pool.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;
    console.log(`bench/api: ${WARMUP_S} s warm-up + ${duration} s per run, sequential; sections ${[...sections].join(', ')}`);
    console.log(`  node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, fd limit: see \`ulimit -n\` (${SESSIONS} sessions need ~${2 * SESSIONS + 100})`);
    console.log(`  PostgreSQL ${pgVersion}${cluster_ ? ' (throwaway local cluster, fsync off)' : ''}; ${HOSTS} hosts, 100 allocations, 200 account openings, 40 customers, 300 audit events, ${SESSIONS} sessions`);
    for (const e of endpoints) {
      const p = await get(platform.port, ENDPOINTS[e]);
      const b = await get(bare.port, ENDPOINTS[e]);
      console.log(`  ${e.padEnd(17)} body ${String(p.length).padStart(6)} bytes; bare identical to the platform: ${p === b ? 'yes' : 'NO'}`);
      if (p !== b) console.log(`    platform: ${p.slice(0, 400)}…\n    bare:     ${b.slice(0, 400)}…`);
    }
    console.log('');

    const run = async (label: string, job: Omit<LoadJob, 'duration'>, seconds = duration) => {
      await load({ ...job, duration: WARMUP_S });
      const row = summarize(label, await load({ ...job, duration: seconds }));
      console.log(line(row));
      return row;
    };
    /**
     * Platform and bare measured in alternating slices of about 2 s (each warmed up first), so that
     * load from outside (a shared machine) falls on both alike; the slices are summed per side.
     */
    const pair = async (e: EndpointName, a: Omit<LoadJob, 'duration'>, b: Omit<LoadJob, 'duration'>, seconds = duration) => {
      await load({ ...a, duration: WARMUP_S });
      await load({ ...b, duration: WARMUP_S });
      const slices = Math.max(1, Math.round(seconds / 2));
      const parts: [LoadResult[], LoadResult[]] = [[], []];
      for (let i = 0; i < slices; i++) {
        parts[0].push(await measured(true, () => load({ ...a, duration: seconds / slices })));
        parts[1].push(await load({ ...b, duration: seconds / slices }));
      }
      const merge = (rs: LoadResult[]): LoadResult => ({
        latencies: Float64Array.from(rs.flatMap((r) => [...r.latencies])),
        completed: rs.reduce((n, r) => n + r.completed, 0),
        non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
        status5xx: rs.reduce((n, r) => n + r.status5xx, 0),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        duration: rs.reduce((n, r) => n + r.duration, 0),
      });
      const rows = [summarize(`platform ${e}`, merge(parts[0])), summarize(`bare     ${e}`, merge(parts[1]))] as const;
      console.log(line(rows[0]));
      console.log(line(rows[1]));
      return rows;
    };
    const tok = (e: EndpointName) => (e === 'healthz' ? [] : tokens);
    const summary: string[] = [];

    if (sections.has('rate')) {
      console.log(`-- rate: ${RATE} req/s offered over ${RATE_CONNECTIONS} connections (each its own session)`);
      console.log(HEADER);
      for (const e of endpoints) {
        const [p, b] = await pair(e, { port: platform.port, path: ENDPOINTS[e], tokens: tok(e), connections: RATE_CONNECTIONS, rate: RATE }, { port: bare.port, path: ENDPOINTS[e], tokens: tok(e), connections: RATE_CONNECTIONS, rate: RATE });
        summary.push(`${`rate 500/s ${e}`.padEnd(34)}${`${p.rps.toFixed(0)} / ${b.rps.toFixed(0)}`.padStart(13)}${x(p.p50, b.p50).padStart(9)}${x(p.p99, b.p99).padStart(9)}   goal: sustain 500, p50 & p99 <= 1.5x`);
      }
      console.log('');
    }
    if (sections.has('closed')) {
      for (const c of [50, 200]) {
        console.log(`-- closed loop, ${c} connections (each its own session)`);
        console.log(HEADER);
        for (const e of endpoints) {
          const [p, b] = await pair(e, { port: platform.port, path: ENDPOINTS[e], tokens: tok(e), connections: c }, { port: bare.port, path: ENDPOINTS[e], tokens: tok(e), connections: c });
          summary.push(`${`closed ${c} ${e}`.padEnd(34)}${`${p.rps.toFixed(0)} / ${b.rps.toFixed(0)}`.padStart(13)}${x(p.p50, b.p50).padStart(9)}${x(p.p99, b.p99).padStart(9)}   throughput ${x(p.rps, b.rps)} of bare (goal >= 0.70x)`);
        }
        console.log('');
      }
    }
    if (sections.has('soak')) {
      console.log(`-- soak: ${SESSIONS} keep-alive connections, each its own session, hosts list, closed loop, ${soak} s`);
      console.log(HEADER);
      const p = await run('platform hosts x1000 sessions', { port: platform.port, path: ENDPOINTS.hosts, tokens, connections: SESSIONS }, soak);
      const b = await run('bare     hosts x1000 sessions', { port: bare.port, path: ENDPOINTS.hosts, tokens, connections: SESSIONS }, soak);
      summary.push(`${'soak 1000 sessions hosts'.padEnd(34)}${`${p.rps.toFixed(0)} / ${b.rps.toFixed(0)}`.padStart(13)}${x(p.p50, b.p50).padStart(9)}${x(p.p99, b.p99).padStart(9)}   platform p99 ${p.p99.toFixed(0)} ms, non-2xx ${p.r.non2xx}, errors ${p.r.errors} (goal: 0 / 0)`);
      console.log('');
    }
    if (sections.has('cluster')) {
      console.log('-- cluster: the platform in N processes behind one port (node:cluster), PostgreSQL, hosts list, closed loop 200');
      console.log(HEADER);
      const env = { BENCH_DB_URL: databaseUrl, BENCH_JWT_KEY: Buffer.from(identity.jwtKey).toString('hex') };
      const rows: Row[] = [];
      for (const n of [1, 2]) {
        const c = await startCluster(n, env);
        try {
          rows.push(await run(`platform x${n} process${n > 1 ? 'es' : ''} hosts`, { port: c.port, path: ENDPOINTS.hosts, tokens, connections: 200 }));
        } finally {
          await c.stop();
        }
      }
      summary.push(`${'cluster 2 vs 1 process hosts'.padEnd(34)}${`${rows[1]!.rps.toFixed(0)} / ${rows[0]!.rps.toFixed(0)}`.padStart(13)}${x(rows[1]!.p50, rows[0]!.p50).padStart(9)}${x(rows[1]!.p99, rows[0]!.p99).padStart(9)}   throughput ${x(rows[1]!.rps, rows[0]!.rps)} (2 cores shared with PostgreSQL and the load)`);
      console.log('');
    }
    if (sections.has('pglite')) {
      console.log('-- PGlite (embedded, in-process, in memory) vs PostgreSQL: the platform\'s hosts list');
      console.log(HEADER);
      pglite = await initORM({ pgliteDir: 'memory://' });
      const liteTokens = await seed(pglite, identity, RATE_CONNECTIONS, false);
      const lite = await listen(platformApp(pglite, identity, connection));
      servers.push(lite.server);
      const same = (await get(lite.port, ENDPOINTS.hosts)).length === (await get(platform.port, ENDPOINTS.hosts)).length;
      const rows: Row[] = [];
      for (const [label, port, t] of [['PGlite', lite.port, liteTokens], ['PostgreSQL', platform.port, tokens]] as const) {
        rows.push(await run(`platform ${label} hosts rate 500/s`, { port, path: ENDPOINTS.hosts, tokens: t, connections: RATE_CONNECTIONS, rate: RATE }));
      }
      for (const [label, port, t] of [['PGlite', lite.port, liteTokens], ['PostgreSQL', platform.port, tokens]] as const) {
        rows.push(await run(`platform ${label} hosts closed 50`, { port, path: ENDPOINTS.hosts, tokens: t, connections: RATE_CONNECTIONS }));
      }
      summary.push(`${'PGlite vs PostgreSQL rate 500'.padEnd(34)}${`${rows[0]!.rps.toFixed(0)} / ${rows[1]!.rps.toFixed(0)}`.padStart(13)}${x(rows[0]!.p50, rows[1]!.p50).padStart(9)}${x(rows[0]!.p99, rows[1]!.p99).padStart(9)}   (same body size: ${same ? 'yes' : 'NO'})`);
      summary.push(`${'PGlite vs PostgreSQL closed 50'.padEnd(34)}${`${rows[2]!.rps.toFixed(0)} / ${rows[3]!.rps.toFixed(0)}`.padStart(13)}${x(rows[2]!.p50, rows[3]!.p50).padStart(9)}${x(rows[2]!.p99, rows[3]!.p99).padStart(9)}   throughput ${x(rows[2]!.rps, rows[3]!.rps)}`);
      console.log('');
    }

    console.log(`${'summary (platform / bare)'.padEnd(34)}${'req/s'.padStart(13)}${'p50'.padStart(9)}${'p99'.padStart(9)}`);
    for (const s of summary) console.log(s);
    console.log(`\n  load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await Promise.all(servers.map(closeServer));
    await connection.close().catch(() => undefined);
    await pool.end();
    await db.close();
    await pglite?.close();
    await sleep(200);
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((err: Error) => console.error(`could not drop ${dbName}: ${err.message}`));
    await client.end();
    await cluster_?.stop();
  }
}

if (process.env.BENCH_CLUSTER_WORKER) {
  await clusterWorker();
} else {
  await main();
  process.exit(0);
}
