/**
 * API overhead benchmark: the platform (Express 5 + middleware + zod + MikroORM) against a bare
 * Express 5 + `pg` server doing the same work, at a fixed offered load.
 *
 *   npm run bench:api                      # 500 req/s for 20 s per endpoint (~2 min in all)
 *   BENCH_DURATION=3 npm run bench:api     # smoke run
 *   BENCH_DATABASE_URL=postgres://… npm run bench:api   # use that server instead of a throwaway cluster
 *
 * Endpoints, each measured alone (warm-up 2 s, then BENCH_DURATION s; never two at once):
 *   platform GET /healthz · bare GET /healthz (same JSON)
 *   platform GET /api/v1/hosts?page=1&page_size=20 (Bearer token, 200 seeded hosts, half with a password)
 *   bare     GET /api/v1/hosts?page=1&page_size=20: the same four queries the ORM issues (token lookup;
 *            page + count in parallel, as em.findAndCount does; credential presence for the page) and
 *            the same envelope; the script checks once that both bodies are identical.
 *
 * Load: autocannon with `overallRate` (500/s over 50 connections = 10 req/s per connection) in a
 * worker thread of this process, so the load generator has its own event loop and does not queue
 * behind the server under test. Latency = request written → response complete, per request, 2xx
 * only; percentiles are computed here from every sample (nearest rank). autocannon's own histogram
 * is not used: it has no p95, and with a rate set it "corrects" for coordinated omission using
 * ceil(1/rate) = 1 as the interval in ms, which adds a synthetic sample for every millisecond of
 * each response and skews the percentiles.
 *
 * Note on the load shape: autocannon's rate limit is per connection per wall-clock second, so each
 * second starts with up to 50 requests in flight and the 500 are sent as fast as they complete;
 * it is a bursty 500/s, not an evenly spaced one.
 *
 * The database is a fresh database created for the run (on a throwaway cluster from
 * test/helpers/postgres.ts, or on the BENCH_DATABASE_URL server) and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import express, { type Express } from 'express';
import pg from 'pg';
import { Connection } from '@temporalio/client';
import { createTemporalClient } from '../config/temporal.js';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { HostCredentialSchema, HostSchema, UserSchema, type HostFacts } from '../db/entities/index.js';
import { createApp } from '../api/app.js';
import { sha256 } from '../api/routes/auth/tokens.js';
import { createApiKey } from '../api/routes/api-keys/service.js';
import { credentialContext } from '../activities/remote/host-targets.js';
import { createLogger } from '../config/logger.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';

const RATE = 500;
const CONNECTIONS = 50;
const WARMUP_S = 2;
const HOSTS = 200;
const LIST_PATH = '/api/v1/hosts?page=1&page_size=20';

// ---------------------------------------------------------------------------------------
// load generator (runs in a worker thread)

interface LoadJob {
  url: string;
  headers: Record<string, string>;
  duration: number;
}

interface LoadResult {
  /** ms, 2xx responses only, unsorted. */
  latencies: Float64Array;
  completed: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** seconds, as measured by autocannon. */
  duration: number;
}

/** The slice of autocannon's (untyped) API used here. */
interface AutocannonInstance {
  on(event: 'response', fn: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void;
}
interface AutocannonRawResult {
  totalCompletedRequests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
type Autocannon = (
  opts: { url: string; headers: Record<string, string>; connections: number; overallRate: number; duration: number },
  cb: (err: Error | null, result: AutocannonRawResult) => void,
) => AutocannonInstance;

function runLoadInWorker(job: LoadJob): void {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const latencies: number[] = [];
  const instance = autocannon(
    { url: job.url, headers: job.headers, connections: CONNECTIONS, overallRate: RATE, duration: job.duration },
    (err, r) => {
      if (err) throw err;
      const out: LoadResult = {
        latencies: Float64Array.from(latencies),
        completed: r.totalCompletedRequests,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        duration: r.duration,
      };
      parentPort!.postMessage(out);
    },
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One autocannon run in a worker thread, then a pause: when autocannon stops it drops its
 * connections, but the server may still be working through the last requests; they must finish
 * before the next run (or the teardown) starts.
 */
async function load(job: LoadJob): Promise<LoadResult> {
  const result = await loadOnce(job);
  await sleep(1500);
  return result;
}

function loadOnce(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    let result: LoadResult | undefined;
    w.once('message', (m: LoadResult) => (result = m));
    w.once('error', reject);
    w.once('exit', (code) => (result ? resolve(result) : reject(new Error(`load worker exited with code ${code} and no result`))));
  });
}

// ---------------------------------------------------------------------------------------
// the bare server: Express 5 + pg, the platform's SQL, the platform's envelope

// What the platform's middleware reads for an API key: the key by its hash, then its enabled owner.
const USER_SQL = `select "u0".* from "api_keys" as "k0" join "users" as "u0" on "u0"."id" = "k0"."user_id" where "k0"."key_hash" = $1 and "k0"."revoked_at" is null and "u0"."disabled_at" is null limit 1`;
const COUNT_SQL = `select count(*) as "count" from "hosts" as "h0"`;
const PAGE_SQL = `select "h0".* from "hosts" as "h0" order by "h0"."created_at" desc, "h0"."id" asc limit $1 offset $2`;
const credsSql = (n: number) =>
  `select "h0"."id", "h0"."host_id" from "host_credentials" as "h0" where "h0"."host_id" in (${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ')})`;

interface HostRow {
  id: string;
  slug: string;
  name: string;
  address: string;
  port: number;
  os: string;
  username: string;
  site: string | null;
  group: string | null;
  tags: string[];
  status: string;
  facts: HostFacts | null;
  expected_gpu: { model?: string; count?: number } | null;
  template_id: string | null;
  owner_tenant: string | null;
  host_key_fingerprint: string | null;
  last_seen_at: Date | null;
  created_at: Date;
}

function createBareApp(pool: pg.Pool): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const fail = (res: express.Response, status: number, code: number, message: string) => res.status(status).json({ code, message, data: null });

  app.get('/healthz', (_req, res) => {
    res.json({ code: 0, message: 'ok', data: { status: 'up' } });
  });

  app.get('/api/v1/hosts', async (req, res) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return fail(res, 401, 40101, 'authentication required');
    const user = await pool.query(USER_SQL, [sha256(m[1]!)]);
    if (!user.rowCount) return fail(res, 401, 40101, 'invalid or revoked token');

    const page = Number(req.query.page ?? 1);
    const pageSize = Number(req.query.page_size ?? 20);
    if (!Number.isInteger(page) || page < 1 || !Number.isInteger(pageSize) || pageSize < 1 || pageSize > 200) {
      return fail(res, 400, 40001, 'page / page_size invalid');
    }
    const [rows, count] = await Promise.all([
      pool.query<HostRow>(PAGE_SQL, [pageSize, (page - 1) * pageSize]),
      pool.query<{ count: string }>(COUNT_SQL),
    ]);
    const ids = rows.rows.map((h) => h.id);
    const withCreds = new Set(ids.length ? (await pool.query<{ host_id: string }>(credsSql(ids.length), ids)).rows.map((c) => c.host_id) : []);
    const total = Number(count.rows[0]!.count);
    res.json({
      code: 0,
      message: 'ok',
      data: {
        items: rows.rows.map((h) => ({
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
          host_key_fingerprint: h.host_key_fingerprint,
          has_credentials: withCreds.has(h.id),
          last_seen_at: h.last_seen_at?.toISOString() ?? null,
          created_at: h.created_at.toISOString(),
        })),
        total,
        page,
        page_size: pageSize,
        pages: Math.ceil(total / pageSize),
      },
    });
  });
  return app;
}

// ---------------------------------------------------------------------------------------
// setup, runs, report

function listen(app: Express): Promise<{ server: Server; base: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err?: Error) => {
      if (err) return reject(err);
      resolve({ server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

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

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

interface Row {
  label: string;
  p50: number;
  p95: number;
  p99: number;
  rps: number;
  r: LoadResult;
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  const duration = Number(process.env.BENCH_DURATION ?? 20);
  if (!Number.isFinite(duration) || duration < 1) throw new Error(`BENCH_DURATION must be a number of seconds >= 1, got ${process.env.BENCH_DURATION}`);

  // Database: a fresh one on the BENCH_DATABASE_URL server, or on a throwaway local cluster.
  const cluster = process.env.BENCH_DATABASE_URL ? undefined : await startPostgres();
  const adminUrl = process.env.BENCH_DATABASE_URL ?? cluster!.url;
  const dbName = `hostflow_bench_${randomBytes(4).toString('hex')}`;
  const databaseUrl = await createDatabase(adminUrl, dbName);

  const db = await initORM({ databaseUrl });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 }); // the ORM's pool size (db/mikro-orm.config.ts)
  // pool.end() resolves before its sockets are closed; a session still closing when the database is
  // dropped (or the cluster stopped) is terminated by the server, which an idle client reports here.
  pool.on('error', () => undefined);
  const connection = Connection.lazy({ address: '127.0.0.1:7233' });
  const servers: Server[] = [];
  try {
    const vault = new Vault(generateKeyring('bench'));
    const em = db.em.fork();
    const benchUser = em.create(UserSchema, { username: 'bench', roles: ['admin'] });
    const t0 = Date.UTC(2026, 9, 1);
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
      if (i % 2 === 0) {
        const kind = linux ? 'password' : 'winrm-password';
        const { ciphertext, keyId } = vault.encrypt(`pw-${randomBytes(9).toString('base64url')}`, credentialContext(host.id, kind));
        em.create(HostCredentialSchema, { host, kind, ciphertext, keyId });
      }
    }
    await em.flush();
    const { key: token } = await createApiKey(db.em, { userId: benchUser.id, name: 'bench' });

    const platform = await listen(
      createApp({
        em: db.em,
        vault,
        logger: createLogger({ level: 'silent' }),
        temporal: { client: createTemporalClient({ connection, payloadKeys: generateKeyring('bench') }), taskQueue: 'bench' },
        settings: { accountOpeningExpiryDays: 7 },
        checks: { db: () => db.ping(), temporal: async () => undefined },
      }),
    );
    servers.push(platform.server);
    const bare = await listen(createBareApp(pool));
    servers.push(bare.server);

    const auth = { authorization: `Bearer ${token}` };
    const get = async (url: string, headers: Record<string, string> = {}) => (await fetch(url, { headers })).text();
    const pBody = await get(platform.base + LIST_PATH, auth);
    const bBody = await get(bare.base + LIST_PATH, auth);
    const pHealth = await get(platform.base + '/healthz');
    const bHealth = await get(bare.base + '/healthz');
    const pg_version = (await pool.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;

    console.log(`bench/api: ${RATE} req/s offered over ${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${duration} s per endpoint, sequential`);
    console.log(`  node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), PostgreSQL ${pg_version}${cluster ? ' (throwaway local cluster, fsync off)' : ''}`);
    console.log(`  ${HOSTS} hosts (${HOSTS / 2} with a credential); list page = ${(JSON.parse(pBody) as { data: { items: unknown[] } }).data.items.length} items, ${pBody.length} bytes`);
    console.log(`  bare responses identical to the platform's: /healthz ${pHealth === bHealth ? 'yes' : 'NO'}, list ${pBody === bBody ? 'yes' : 'NO'}`);
    if (pBody !== bBody) console.log(`    platform: ${pBody.slice(0, 300)}…\n    bare:     ${bBody.slice(0, 300)}…`);
    console.log('');

    const targets: Array<{ label: string; url: string; headers: Record<string, string> }> = [
      { label: 'platform GET /healthz', url: platform.base + '/healthz', headers: {} },
      { label: 'bare     GET /healthz', url: bare.base + '/healthz', headers: {} },
      { label: 'platform GET /api/v1/hosts', url: platform.base + LIST_PATH, headers: auth },
      { label: 'bare     GET /api/v1/hosts', url: bare.base + LIST_PATH, headers: auth },
    ];
    const rows: Row[] = [];
    for (const t of targets) {
      await load({ url: t.url, headers: t.headers, duration: WARMUP_S });
      const r = await load({ url: t.url, headers: t.headers, duration });
      const sorted = r.latencies.slice().sort();
      const row: Row = { label: t.label, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), rps: r.completed / r.duration, r };
      rows.push(row);
      console.log(`  ${t.label}: ${r.completed} responses in ${r.duration.toFixed(1)} s, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms`);
    }

    const ms = (v: number) => v.toFixed(2).padStart(8);
    console.log('');
    console.log(`${'endpoint'.padEnd(28)}${'p50 ms'.padStart(8)}${'p95 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'max ms'.padStart(8)}${'req/s'.padStart(8)}${'non-2xx'.padStart(9)}${'errors'.padStart(8)}`);
    for (const r of rows) {
      const max = r.r.latencies.length ? Math.max(...r.r.latencies) : NaN;
      console.log(`${r.label.padEnd(28)}${ms(r.p50)}${ms(r.p95)}${ms(r.p99)}${ms(max)}${r.rps.toFixed(0).padStart(8)}${String(r.r.non2xx).padStart(9)}${String(r.r.errors + r.r.timeouts).padStart(8)}`);
    }
    console.log('');
    console.log(`${'platform / bare'.padEnd(28)}${'p50'.padStart(8)}${'p99'.padStart(8)}`);
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`.padStart(8);
    for (const [name, p, b] of [['GET /healthz', rows[0]!, rows[1]!], ['GET /api/v1/hosts', rows[2]!, rows[3]!]] as const) {
      console.log(`${name.padEnd(28)}${ratio(p.p50, b.p50)}${ratio(p.p99, b.p99)}`);
    }
  } finally {
    await Promise.all(servers.map(closeServer));
    await connection.close().catch(() => undefined);
    await pool.end();
    await db.close();
    await sleep(200); // let the pools' sockets close
    await dropDatabase(adminUrl, dbName).catch((err: Error) => console.error(`could not drop ${dbName}: ${err.message}`));
    await cluster?.stop();
  }
}

if (isMainThread) {
  await main();
} else {
  runLoadInWorker(workerData as LoadJob);
}
