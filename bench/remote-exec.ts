/**
 * Remote execution benchmark: what the platform's layers cost on the way to a command on a host.
 * Everything runs in one process against one throwaway loopback OpenSSH server
 * (test/helpers/sshd.ts), a Temporal dev server started for the run (SQLite file in a temp dir, as
 * `npm start` runs it) and a throwaway PostgreSQL cluster (test/helpers/postgres.ts, fsync off).
 *
 *   npm run bench:remote-exec                      # about 2 minutes
 *   BENCH_EXEC_N=100 BENCH_TEMPORAL_N=50 BENCH_E2E_RUNS=2 npm run bench:remote-exec   # smoke run
 *   BENCH_DATABASE_URL=postgres://… npm run bench:remote-exec   # a fresh database on that server
 *   BENCH_TEMPORAL_DB=memory npm run bench:remote-exec          # dev server without its SQLite file
 *
 * Figures (each printed with what it includes):
 *   1. exec('true') on an open connection: raw ssh2 `client.exec` vs the platform's
 *      `SshExecutor.exec(hostId, 'true', { timeoutMs: 15000 })` (what `pingHost` runs: pooled
 *      connection, timeout timer, stdout/stderr capture, stdin EOF) and the `pingHost` activity body
 *      called as a plain function (adds a DB lookup of the host's OS). BENCH_EXEC_N samples each
 *      (default 300) after 20 warm-up, interleaved so that machine noise hits all rows alike.
 *   2. the same as a Temporal activity: a one-activity workflow (`benchRemoteExec`, bundled from a
 *      temp file next to the platform's workflows) calling `pingHost`, timed from
 *      `client.workflow.execute` to its result. "Temporal's cost" = that minus the activity body; the
 *      histories' event times then split the total into its hops (dispatch, worker, activity, client).
 *   3. account opening end to end: approve POST → workflow result `done` (account created, groups
 *      set, login verified), the platform's `accountOpening` workflow submitted through the API as
 *      the tests do; vs `ansible -m user` (name, comment, shell, groups, password hash) followed by
 *      one ssh2 password login as the new user (`id -un; id -nG`). Ansible comes from PyPI into a
 *      venv under ~/.cache/hostflow (created on first use, then reused).
 *   4. approve Update → first remote command, from the same runs as 3: the time the API's Temporal
 *      client sends the approve Update (client interceptor) to the first `exec` of
 *      `provisionAccount` (observed by a wrapping executor in this process's worker).
 *
 * All timestamps are `performance.now()` of this one process (client, API, worker and executor
 * share it), so the differences need no clock synchronisation.
 *
 * The worker registers the activities these two workflows use, built by the same factories that
 * activities/index.ts `createActivities` spreads (remote, account, account-opening DB, notify), and
 * the options worker/create-worker.ts sets; the workflow bundle holds `accountOpening` and
 * `benchRemoteExec` only. That keeps the bench independent of unrelated workflows and activities.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Client as SshClient } from 'ssh2';
import { Connection, type Client, type WorkflowClientInterceptor } from '@temporalio/client';
import { createTemporalClient, dataConverter } from '../config/temporal.js';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { initORM, type Db } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { UserSchema, type Role } from '../db/entities/index.js';
import { createApp } from '../api/app.js';
import { createApiKey } from '../api/routes/api-keys/service.js';
import { createRemoteActivities } from '../activities/remote/remote.activities.js';
import { createAccountActivities } from '../activities/remote/account.activities.js';
import { createAccountOpeningDbActivities } from '../activities/db/account-opening.activities.js';
import { createNotifyActivities } from '../activities/notify/notify.activities.js';
import type { ExecOptions, ExecResult, RemoteExecutor } from '../activities/remote/executor.js';
import type { PingResult } from '../activities/remote/remote.activities.js';
import { generatePassword } from '../activities/remote/passwords.js';
import { SshExecutor } from '../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../activities/winrm/winrm-executor.js';
import { stateQuery, type accountOpening } from '../workflows/account-opening.workflow.js';
import { installWorkerRuntime } from '../worker/create-worker.js';
import { createHostChangeLockActivities } from '../activities/temporal/host-change-lock.activities.js';
import { createLogger } from '../config/logger.js';
import { TEMPORAL_CLI_VERSION, cacheDir, ensureTemporalCli, startDevServer, type DevServer } from '../scripts/temporal-cli.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';
import { adminConnectConfig, execOn, freePort, sshConnect, startSshd, type SshTestHost } from '../test/helpers/sshd.js';
import { cleanUpOnExit } from './exit.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const EXEC_WARMUP = 20;
const TEMPORAL_WARMUP = 20;
const GROUPS = ['users', 'sudo']; // the request asks for ['users'] with is_admin → the platform adds 'sudo'

const envInt = (name: string, dflt: number, min: number): number => {
  const raw = process.env[name];
  const v = raw === undefined ? dflt : Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${raw}`);
  return v;
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

// ---------------------------------------------------------------------------------------
// statistics and formatting (nearest-rank percentiles over every sample, as bench/api.ts)

function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

function stats(samples: readonly number[]): Stats {
  const s = samples.filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    min: s[0] ?? NaN,
    max: s.at(-1) ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

const ms = (v: number, w = 8) => (Number.isFinite(v) ? v.toFixed(2) : '-').padStart(w);
const ratio = (a: number, b: number, w = 8) => `${(a / b).toFixed(2)}x`.padStart(w);

// ---------------------------------------------------------------------------------------
// child processes

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, env: o.env ?? process.env }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(new Error(`${cmd}: ${err.message}`));
      resolve({ code: child.exitCode ?? (err ? 1 : 0), stdout, stderr });
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

async function runOk(cmd: string, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-2000)}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------
// process-exit safety net for what this script starts itself (sshd and PostgreSQL have their own)

const createdOsUsers = new Set<string>();
const controlDirs = new Set<string>();
let devServerProcess: DevServer['process'] | undefined;
let devBeforeProcess: DevServer['process'] | undefined;
let tmpDir: string | undefined;

function closeControlMasters(dir: string): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) spawnSync('ssh', ['-O', 'exit', '-o', `ControlPath=${path.join(dir, f)}`, 'bench'], { stdio: 'ignore', timeout: 5000 });
}

function removeOsUserSync(u: string): void {
  spawnSync('pkill', ['-KILL', '-u', u], { stdio: 'ignore' });
  spawnSync('userdel', ['-r', '-f', u], { stdio: 'ignore' });
  rmSync(`/var/lib/hostflow/accounts/${u}`, { force: true });
}

function exitCleanup(): void {
  for (const d of controlDirs) closeControlMasters(d);
  controlDirs.clear();
  for (const u of createdOsUsers) removeOsUserSync(u);
  createdOsUsers.clear();
  for (const p of [devServerProcess, devBeforeProcess]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}
cleanUpOnExit(exitCleanup);

async function removeOsUser(u: string): Promise<void> {
  await run('pkill', ['-KILL', '-u', u]);
  // userdel fails at once while another process (parallel tests) holds /etc/passwd's lock: retry.
  for (let attempt = 0; ; attempt++) {
    const r = await run('userdel', ['-r', '-f', u]);
    if (r.code === 0 || r.code === 6 || attempt >= 50 || !/lock|try again/i.test(r.stderr)) break;
    await sleep(20 + Math.random() * 80);
  }
  await run('rm', ['-f', `/var/lib/hostflow/accounts/${u}`]);
  createdOsUsers.delete(u);
}

// ---------------------------------------------------------------------------------------
// ansible (from PyPI, in a venv outside the repository)

async function ensureAnsible(): Promise<{ bin: string; version: string }> {
  const venv = process.env.BENCH_ANSIBLE_VENV ?? path.join(cacheDir(), 'ansible-venv');
  const bin = path.join(venv, 'bin', 'ansible');
  if (!existsSync(bin)) {
    log(`creating ${venv} and installing ansible-core from PyPI (first run only)`);
    await runOk('python3', ['-m', 'venv', venv]);
    await runOk(path.join(venv, 'bin', 'pip'), ['install', '--quiet', 'ansible-core']);
  }
  const out = await runOk(bin, ['--version'], { env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' } }).catch((err: Error) => {
    throw new Error(`${bin} does not run (delete ${venv} to have it recreated): ${err.message}`);
  });
  return { bin, version: out.split('\n')[0]!.trim() };
}

// ---------------------------------------------------------------------------------------
// observation: a wrapping executor and a client interceptor (this process only; the platform code is unchanged)

interface ExecObservation {
  /** exec() called by the activity. */
  call: number;
  /** ssh2 `client.exec` issued (the channel-open request leaves): result time minus the executor's own durationMs (rounded to 1 ms). */
  sent: number;
  /** exec() resolved with the command's result. */
  result: number;
  command: string;
}

/** Delegates to the platform's SshExecutor and reports the first exec after `arm()`. */
class ObservedSshExecutor implements RemoteExecutor, Pick<SshExecutor, 'verifyLogin'> {
  private armed = false;
  first: ExecObservation | undefined;
  constructor(private readonly inner: SshExecutor) {}

  arm(): void {
    this.armed = true;
    this.first = undefined;
  }

  async exec(hostId: string, command: string, opts?: ExecOptions): Promise<ExecResult> {
    const watch = this.armed && !this.first;
    if (watch) this.armed = false;
    const call = performance.now();
    const r = await this.inner.exec(hostId, command, opts);
    if (watch) {
      const result = performance.now();
      this.first = { call, sent: Math.max(call, result - r.durationMs), result, command };
    }
    return r;
  }

  verifyLogin(...args: Parameters<SshExecutor['verifyLogin']>): ReturnType<SshExecutor['verifyLogin']> {
    return this.inner.verifyLogin(...args);
  }

  evict(hostId: string): void {
    this.inner.evict(hostId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

// The one-activity workflow of figure 2, bundled together with the platform's accountOpening workflow
// (one worker serves both) from a temp file; its imports resolve through the repository's node_modules.
const benchWorkflowSource = (accountOpeningModule: string) => `
import { proxyActivities } from '@temporalio/workflow';
export { accountOpening } from ${JSON.stringify(accountOpeningModule)};
export { hostChangeLock } from ${JSON.stringify(accountOpeningModule.replace(/account-opening\.workflow\.(ts|js)$/, 'host-change-lock.workflow.$1'))};
const { pingHost } = proxyActivities({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 1 } });
/** One call of the platform's remote exec activity (pingHost: DB lookup of the OS, then exec 'true'). */
export async function benchRemoteExec(hostId) {
  return pingHost(hostId);
}
`;

// ---------------------------------------------------------------------------------------

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>['events']>[number];

/**
 * Splits one benchRemoteExec history (start, WFT, activity, WFT, completion) into its hops by event
 * time; 'span' is first event → last event.
 */
function historySegments(events: HistoryEvent[]): Map<string, number> {
  const at = (e: HistoryEvent | undefined): number => {
    const ts = e?.eventTime;
    if (!ts) return NaN;
    return Number(String(ts.seconds ?? 0)) * 1000 + (ts.nanos ?? 0) / 1e6;
  };
  const all = (pick: (e: HistoryEvent) => unknown) => events.filter((e) => pick(e) != null);
  const wftSched = all((e) => e.workflowTaskScheduledEventAttributes);
  const wftStart = all((e) => e.workflowTaskStartedEventAttributes);
  const wftDone = all((e) => e.workflowTaskCompletedEventAttributes);
  const actSched = all((e) => e.activityTaskScheduledEventAttributes)[0];
  const actStart = all((e) => e.activityTaskStartedEventAttributes)[0];
  const actDone = all((e) => e.activityTaskCompletedEventAttributes)[0];
  const span = at(events.at(-1)) - at(events[0]);
  const m = new Map<string, number>([
    ['WFT 1 scheduled → started (to the worker)', at(wftStart[0]) - at(wftSched[0])],
    ['WFT 1 started → completed (worker)', at(wftDone[0]) - at(wftStart[0])],
    ['activity scheduled → started (to the worker)', at(actStart) - at(actSched)],
    ['activity started → completed (body + RPC)', at(actDone) - at(actStart)],
    ['WFT 2 scheduled → started (to the worker)', at(wftStart[1]) - at(wftSched[1])],
    ['WFT 2 started → completed (worker)', at(wftDone[1]) - at(wftStart[1])],
  ]);
  let inner = 0;
  for (const v of m.values()) inner += v;
  m.set('other gaps between events (server)', span - inner);
  m.set('span', span);
  return m;
}

function rawExecTrue(client: SshClient): Promise<void> {
  return new Promise((resolve, reject) => {
    client.exec('true', (err, stream) => {
      if (err) return reject(err);
      let code: number | null = null;
      stream.on('exit', (c: number | null) => (code = c));
      stream.on('close', () => (code === 0 ? resolve() : reject(new Error(`raw exec('true') exited ${code}`))));
      stream.resume();
      stream.stderr.resume();
    });
  });
}

interface E2eRun {
  variant: string;
  username: string;
  total: number;
  /** Figure 4 timeline, ms after the approve POST was sent (platform runs only). */
  timeline?: { updateSent: number; updateDone: number; provisionStart: number; execCall: number; execSent: number; execResult: number; done: number };
  provisionAttempts?: number;
}

type Teardown = Array<[string, () => Promise<unknown>]>;

async function main(): Promise<void> {
  const wallStart = performance.now();
  const EXEC_N = envInt('BENCH_EXEC_N', 300, 1);
  const TEMPORAL_N = envInt('BENCH_TEMPORAL_N', 200, 1);
  const E2E_RUNS = envInt('BENCH_E2E_RUNS', 5, 1);
  const temporalDb = process.env.BENCH_TEMPORAL_DB ?? 'file';
  if (temporalDb !== 'file' && temporalDb !== 'memory') throw new Error(`BENCH_TEMPORAL_DB must be file or memory, got ${temporalDb}`);
  const temporalInMemory = temporalDb === 'memory';
  const teardown: Teardown = [];
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'hostflow-bench-remote-exec-'));
  const tmp = tmpDir;

  try {
    // ---- setup: ansible venv and Temporal CLI first (may build/install), then the servers in parallel
    const ansible = await ensureAnsible();
    const cli = await ensureTemporalCli({ log });
    const dataDir = path.join(tmp, 'data');
    await mkdir(dataDir);
    const workflowFile = path.join(tmp, 'bench-workflows.js');
    await writeFile(workflowFile, benchWorkflowSource(path.join(REPO, 'workflows', 'account-opening.workflow.js')));

    log('starting PostgreSQL, sshd, the Temporal dev server and bundling workflows');
    // Two dev servers: "after" with the platform's dispatch settings (scripts/temporal-cli.ts
    // devServerDynamicConfig), "before" with the server's defaults, as the platform ran until now.
    const startDev = async (dispatch: 'fast' | 'default'): Promise<DevServer> => {
      const dbFile = path.join(dataDir, `temporal-${dispatch}.db`);
      for (let attempt = 0; ; attempt++) {
        try {
          return await startDevServer({ cli, port: await freePort(), uiPort: null, dispatch, ...(temporalInMemory ? {} : { dbFile }) });
        } catch (err) {
          if (attempt >= 2) throw err;
          rmSync(dbFile, { force: true });
        }
      }
    };
    const settled = await Promise.allSettled([
      process.env.BENCH_DATABASE_URL ? Promise.resolve(undefined) : startPostgres(),
      startSshd(),
      startDev('fast'),
      startDev('default'),
      bundleWorkflowCode({
        workflowsPath: workflowFile,
        logger: { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => console.error(m), log: () => undefined },
        webpackConfigHook: (config) => ({ ...config, resolve: { ...config.resolve, modules: [...(config.resolve?.modules ?? ['node_modules']), path.join(REPO, 'node_modules')] } }),
      }),
    ]);
    const [pgR, sshdR, devR, devBeforeR, bundleR] = settled;
    if (devR.status === 'fulfilled') {
      devServerProcess = devR.value.process;
      teardown.push(['temporal dev server', () => devR.value.stop()]);
    }
    if (devBeforeR.status === 'fulfilled') {
      devBeforeProcess = devBeforeR.value.process;
      teardown.push(['temporal dev server (before)', () => devBeforeR.value.stop()]);
    }
    if (sshdR.status === 'fulfilled') teardown.push(['sshd', () => sshdR.value.stop()]);
    if (pgR.status === 'fulfilled' && pgR.value) {
      const c = pgR.value;
      teardown.push(['postgres', () => c.stop()]);
    }
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    const cluster = (pgR as PromiseFulfilledResult<Awaited<ReturnType<typeof startPostgres>> | undefined>).value;
    const sshd = (sshdR as PromiseFulfilledResult<SshTestHost>).value;
    const dev = (devR as PromiseFulfilledResult<DevServer>).value;
    const devBefore = (devBeforeR as PromiseFulfilledResult<DevServer>).value;
    const bundle = (bundleR as PromiseFulfilledResult<Awaited<ReturnType<typeof bundleWorkflowCode>>>).value;

    // ---- database, platform objects, API, worker
    const adminUrl = process.env.BENCH_DATABASE_URL ?? cluster!.url;
    const dbName = `hostflow_bench_${randomBytes(4).toString('hex')}`;
    const databaseUrl = await createDatabase(adminUrl, dbName);
    teardown.push(['drop database', () => dropDatabase(adminUrl, dbName)]);
    const db: Db = await initORM({ databaseUrl });
    teardown.push(['db', () => db.close()]);
    const pgVersion = (await db.em.fork().getConnection().execute<Array<{ v: string }>>(`select current_setting('server_version') as v`))[0]?.v ?? '?';

    const logger = createLogger({ level: 'silent' });
    const vault = new Vault(generateKeyring('bench'));
    const ssh = new SshExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
    teardown.push(['ssh executor', () => ssh.close()]);
    const observedSsh = new ObservedSshExecutor(ssh);
    const winrm = new WinRmExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
    teardown.push(['winrm executor', () => winrm.close()]);

    const roles: Record<'admin' | 'approver' | 'requester', Role[]> = { admin: ['admin', 'approver', 'operator'], approver: ['approver'], requester: ['requester'] };
    const tokens = {} as Record<keyof typeof roles, string>;
    {
      const em = db.em.fork();
      const ids = {} as Record<keyof typeof roles, string>;
      for (const [name, r] of Object.entries(roles) as Array<[keyof typeof roles, Role[]]>) {
        ids[name] = em.create(UserSchema, { username: name, roles: r }).id;
      }
      await em.flush();
      for (const name of Object.keys(roles) as Array<keyof typeof roles>) tokens[name] = (await createApiKey(db.em, { userId: ids[name], name: 'bench' })).key;
    }
    const adminToken = tokens.admin;

    // Client interceptor: when the API's client sends the approve Update.
    const updateSentAt = new Map<string, number>();
    const updateObserver: WorkflowClientInterceptor = {
      async startUpdate(input, next) {
        if (input.updateName === 'approve') updateSentAt.set(input.workflowExecution.workflowId, performance.now());
        return next(input);
      },
    };
    // after: the API's client on the worker's NativeConnection, eager start (as scripts/start.ts wires it).
    installWorkerRuntime('WARN');
    const workerConnection = await NativeConnection.connect({ address: dev.address });
    teardown.push(['worker connection', () => workerConnection.close()]);
    const payloadKeys = generateKeyring('bench-payload');
    const client = createTemporalClient({ connection: workerConnection, payloadKeys, interceptors: { workflow: [updateObserver] } });
    const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
    // before: a grpc-js client and its own worker connection on the default-dispatch dev server.
    const beforeConnection = await Connection.connect({ address: devBefore.address });
    teardown.push(['client connection (before)', () => beforeConnection.close()]);
    const beforeClient = createTemporalClient({ connection: beforeConnection, payloadKeys, interceptors: { workflow: [updateObserver] } });
    const beforeWorkerConnection = await NativeConnection.connect({ address: devBefore.address });
    teardown.push(['worker connection (before)', () => beforeWorkerConnection.close()]);

    // One API per stack, on the same database.
    const listen = async (c: Client, eagerStart: boolean, name: string): Promise<string> => {
      const app = createApp({
        em: db.em,
        vault,
        logger,
        temporal: { client: c, taskQueue, eagerStart },
        settings: { accountOpeningExpiryDays: 7 },
        checks: { db: () => db.ping(), temporal: async () => undefined },
      });
      const server = await new Promise<Server>((resolve) => {
        const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
      });
      teardown.push([
        name,
        () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      ]);
      return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    };
    const baseUrl = await listen(client, true, 'api');
    const beforeBaseUrl = await listen(beforeClient, false, 'api (before)');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON, as in test/helpers/platform.ts
    const api = async (method: string, p: string, token: string, body?: unknown, base = baseUrl): Promise<{ status: number; body: { code: number; message: string; data: any } }> => {
      const res = await fetch(base + p, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as never };
    };
    const apiOk = async (method: string, p: string, token: string, body?: unknown, status = 200, base = baseUrl) => {
      const r = await api(method, p, token, body, base);
      if (r.status !== status) throw new Error(`${method} ${p}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.data;
    };

    // The host, registered as the tests do (key login as the admin user; passwordless sudo).
    const hostId = (await apiOk('POST', '/api/v1/hosts', adminToken, { name: 'bench-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, account_policy: { allow_admin: true, privileged_by: 'anyone' } }, 201)).id as string;
    await apiOk('POST', `/api/v1/hosts/${hostId}/status`, adminToken, { status: 'onboarding' });
    await apiOk('POST', `/api/v1/hosts/${hostId}/status`, adminToken, { status: 'online' });

    // Activities: the platform's factories (the ones createActivities spreads for these two workflows),
    // with the observed executor; two activities are wrapped to time them.
    const deps = { em: db.em, vault, logger, ssh: observedSsh, winrm, mailer: null, mailFrom: 'Hostflow <hostflow@bench>', baseDomain: 'hosts.bench' };
    const platformActs = {
      ...createRemoteActivities({ ssh: deps.ssh, winrm: deps.winrm, em: deps.em }),
      ...createAccountActivities(deps),
      ...createAccountOpeningDbActivities(deps),
      ...createNotifyActivities(deps),
      // account opening queues on the host's change lock (host-change-lock/<hostId>) before it touches the host
      ...createHostChangeLockActivities(),
    };
    let lastPingBodyMs = NaN;
    let provisionCalls: number[] = [];
    const acts: typeof platformActs = {
      ...platformActs,
      async pingHost(id: string) {
        const t = performance.now();
        try {
          return await platformActs.pingHost(id);
        } finally {
          lastPingBodyMs = performance.now() - t;
        }
      },
      provisionAccount(requestId: string) {
        provisionCalls.push(performance.now());
        return platformActs.provisionAccount(requestId);
      },
    };
    // The options worker/create-worker.ts sets, with the tests' grace time; one worker per stack.
    for (const [name, connection] of [['worker', workerConnection], ['worker (before)', beforeWorkerConnection]] as const) {
      const worker = await Worker.create({
        connection,
        namespace: 'default',
        taskQueue,
        activities: acts,
        dataConverter: dataConverter(payloadKeys),
        workflowBundle: { code: bundle.code },
        shutdownGraceTime: '5s',
        maxConcurrentActivityTaskExecutions: 200,
      });
      const workerRun = worker.run();
      teardown.push([
        name,
        async () => {
          worker.shutdown();
          await workerRun;
        },
      ]);
    }

    // First contact pins the host key.
    const ping = await ssh.exec(hostId, 'true', { timeoutMs: 15_000 });
    const pinned = (await apiOk('GET', `/api/v1/hosts/${hostId}`, adminToken)).host_key_fingerprint as string | null;
    const sshVersion = (await run('ssh', ['-V'])).stderr.trim();

    const cpus = os.cpus();
    console.log('bench/remote-exec: one loopback OpenSSH server, the platform in this process, no other load generated');
    console.log(`  node ${process.version}, ${cpus.length} CPUs (${cpus[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`);
    console.log(`  sshd: ${sshVersion.trim()} on 127.0.0.1:${sshd.port}, admin user with key login + passwordless sudo, UsePAM no`);
    console.log(`  Temporal: CLI ${TEMPORAL_CLI_VERSION} dev server (${temporalInMemory ? 'in-memory SQLite, BENCH_TEMPORAL_DB=memory' : 'SQLite file in a temp dir'}) on ${dev.address}; PostgreSQL ${pgVersion}${cluster ? ' (throwaway cluster, fsync off)' : ''}`);
    console.log(`  ${ansible.version} (${ansible.bin})`);
    console.log(`  host registered through the API; first exec exit ${ping.exitCode}; pinned host key ${pinned === sshd.hostKeyFingerprintSha256 ? 'matches sshd' : `MISMATCH (${pinned})`}`);
    console.log('');

    // ==== 1. exec('true') on an open connection ==========================================
    log(`figure 1: ${EXEC_WARMUP} + ${EXEC_N} execs per row`);
    const raw = await sshConnect(adminConnectConfig(sshd));
    teardown.push(['raw ssh2 client', async () => raw.end()]);
    const rows1: Array<{ label: string; fn: () => Promise<unknown>; samples: number[] }> = [
      { label: "raw ssh2 client.exec('true')", fn: () => rawExecTrue(raw), samples: [] },
      {
        label: "platform SshExecutor.exec('true')",
        fn: async () => {
          const r = await ssh.exec(hostId, 'true', { timeoutMs: 15_000 });
          if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
        },
        samples: [],
      },
      { label: 'pingHost activity body, no Temporal', fn: () => platformActs.pingHost(hostId), samples: [] },
    ];
    for (let i = 0; i < EXEC_WARMUP + EXEC_N; i++) {
      for (let k = 0; k < rows1.length; k++) {
        const row = rows1[(i + k) % rows1.length]!; // rotate the order every iteration
        const t = performance.now();
        await row.fn();
        const d = performance.now() - t;
        if (i >= EXEC_WARMUP) row.samples.push(d);
      }
    }
    const s1 = rows1.map((r) => ({ label: r.label, s: stats(r.samples) }));
    console.log(`1. exec('true') on an already-open connection: ${EXEC_N} samples per row after ${EXEC_WARMUP} warm-up, rows interleaved`);
    console.log(`   raw      = ssh2 Client.exec on an open connection (Nagle off), wait for channel close; nothing else`);
    console.log(`   platform = SshExecutor.exec(hostId, 'true', { timeoutMs: 15000 }) as pingHost calls it: pool lookup, timeout timer,`);
    console.log(`              stdout/stderr capture, stdin EOF, result object. Quoting is done by the command builders (linux.ts) before`);
    console.log(`              exec and is not on this path: 'true' needs none. Connection already pooled (opened in warm-up).`);
    console.log(`   pingHost = the activity function called directly: adds a DB read of the host's OS and the error classifier`);
    console.log(`${''.padEnd(40)}${'p50 ms'.padStart(8)}${'p95 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'max ms'.padStart(8)}${'mean ms'.padStart(9)}`);
    for (const r of s1) console.log(`${('   ' + r.label).padEnd(40)}${ms(r.s.p50)}${ms(r.s.p95)}${ms(r.s.p99)}${ms(r.s.max)}${ms(r.s.mean, 9)}`);
    const [rawS, platS, pingS] = [s1[0]!.s, s1[1]!.s, s1[2]!.s];
    console.log(`${'   platform / raw'.padEnd(40)}${ratio(platS.p50, rawS.p50)}${ratio(platS.p95, rawS.p95)}${ratio(platS.p99, rawS.p99)}${''.padStart(8)}${ratio(platS.mean, rawS.mean, 9)}   (goal <= 1.5x)`);
    console.log(`${'   pingHost body / raw'.padEnd(40)}${ratio(pingS.p50, rawS.p50)}${ratio(pingS.p95, rawS.p95)}${ratio(pingS.p99, rawS.p99)}${''.padStart(8)}${ratio(pingS.mean, rawS.mean, 9)}`);
    console.log('');

    // ==== 2. the same as a Temporal activity, before and after ==========================
    log(`figure 2: ${TEMPORAL_WARMUP} + ${TEMPORAL_N} workflow executions per stack, interleaved`);
    const stacks2 = [
      { name: 'before', label: 'before: default dispatch, grpc-js client', client: beforeClient, eager: false },
      { name: 'after', label: 'after: fast dispatch + eager, shared conn.', client, eager: true },
    ].map((st) => ({ ...st, total: [] as number[], body: [] as number[], cost: [] as number[], ids: [] as string[], eagerAccepted: 0 }));
    const runTag = randomBytes(3).toString('hex');
    for (let i = 0; i < TEMPORAL_WARMUP + TEMPORAL_N; i++) {
      for (let k = 0; k < stacks2.length; k++) {
        const st = stacks2[(i + k) % stacks2.length]!; // alternate which stack goes first
        lastPingBodyMs = NaN;
        const id = `bench-remote-exec/${runTag}/${st.name}/${i}`;
        const t = performance.now();
        const r = await st.client.workflow.execute<(hostId: string) => Promise<PingResult>>('benchRemoteExec', {
          taskQueue,
          workflowId: id,
          args: [hostId],
          ...(st.eager ? { requestEagerStart: true } : {}),
        });
        const d = performance.now() - t;
        if (r.exitCode !== 0) throw new Error(`benchRemoteExec: exit ${r.exitCode}`);
        if (i >= TEMPORAL_WARMUP) {
          st.ids.push(id);
          st.total.push(d);
          st.body.push(lastPingBodyMs);
          st.cost.push(d - lastPingBodyMs);
        }
      }
    }
    console.log(`2. the same command as a Temporal activity: ${TEMPORAL_N} workflow executions per row after ${TEMPORAL_WARMUP} warm-up, one at a time,`);
    console.log(`   before/after interleaved. A one-activity workflow (benchRemoteExec → pingHost, maximumAttempts 1) on this process's`);
    console.log(`   worker; timed from client.workflow.execute() to its result: start, 2 workflow tasks, 1 activity task, completion,`);
    console.log(`   result long-poll, through a dev server (${temporalInMemory ? 'in-memory SQLite' : 'SQLite file'}). "Temporal's cost" is per execution: total minus the activity body.`);
    console.log(`   before = dev server defaults (history.transferProcessorMaxPollRPS 20, no eager activities), the client on its own`);
    console.log(`            grpc-js connection, no eager start: the platform until now.`);
    console.log(`   after  = scripts/temporal-cli.ts devServerDynamicConfig (transferProcessorMaxPollRPS 1000, eager activities) and the`);
    console.log(`            client on the worker's NativeConnection with requestEagerStart, as npm start runs the API and worker.`);
    console.log(`${''.padEnd(52)}${'p50 ms'.padStart(8)}${'p95 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'max ms'.padStart(8)}${'mean ms'.padStart(9)}${'min ms'.padStart(8)}`);
    const row2 = (label: string, v: Stats) => console.log(`${('   ' + label).padEnd(52)}${ms(v.p50)}${ms(v.p95)}${ms(v.p99)}${ms(v.max)}${ms(v.mean, 9)}${ms(v.min)}`);
    row2("raw ssh2 client.exec('true') (figure 1, baseline)", rawS);
    for (const st of stacks2) {
      console.log(`   ${st.label}`);
      row2('  workflow execute → result', stats(st.total));
      row2('  pingHost body inside the worker', stats(st.body));
      row2("  Temporal's cost (total - body)", stats(st.cost));
    }
    const [b2, a2] = [stats(stacks2[0]!.total), stats(stacks2[1]!.total)];
    console.log(`${'   after / before (execute → result)'.padEnd(52)}${ratio(a2.p50, b2.p50)}${ratio(a2.p95, b2.p95)}${ratio(a2.p99, b2.p99)}`);
    console.log(`${'   after, workflow / raw exec'.padEnd(52)}${ratio(a2.p50, rawS.p50)}${ratio(a2.p95, rawS.p95)}   goal: one-activity workflow <= 20 ms p50 (after: ${a2.p50 <= 20 ? 'met' : `missed by ${(a2.p50 - 20).toFixed(1)} ms`})`);
    // Where Temporal's cost goes, from the server's event times in each measured history (read after the runs).
    for (const st of stacks2) {
      const segments = new Map<string, number[]>();
      for (const [k, id] of st.ids.entries()) {
        const events = (await st.client.workflow.getHandle(id).fetchHistory()).events ?? [];
        if (events[0]?.workflowExecutionStartedEventAttributes?.eagerExecutionAccepted) st.eagerAccepted++;
        const split = historySegments(events);
        split.set('client: start RPC + result long-poll (rest)', st.total[k]! - split.get('span')!);
        split.delete('span');
        for (const [name, v] of split) segments.set(name, [...(segments.get(name) ?? []), v]);
      }
      console.log(`   ${st.name}: split by the history's event times (server clock, same machine); eager start accepted in ${st.eagerAccepted}/${st.ids.length}:`);
      for (const [name, v] of segments) row2(`  ${name}`, stats(v));
    }
    console.log('');

    // ==== 3 + 4. account opening end to end vs ansible ===================================
    log(`figures 3 and 4: 1 warm-up round + ${E2E_RUNS} rounds of 4 variants`);
    const keyFile = path.join(tmp, 'admin_key');
    await writeFile(keyFile, sshd.adminPrivateKey, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    const knownHosts = path.join(tmp, 'known_hosts');
    await writeFile(knownHosts, `[${sshd.host}]:${sshd.port} ${sshd.hostPublicKey}\n`);
    const ansibleHome = path.join(tmp, 'ansible-home');
    await mkdir(ansibleHome);

    const platformRun = async (variant: string, cold: boolean, before = false): Promise<E2eRun> => {
      const c = before ? beforeClient : client;
      const base = before ? beforeBaseUrl : baseUrl;
      const username = `hfbp${randomBytes(3).toString('hex')}`;
      createdOsUsers.add(username);
      const sub = await apiOk(
        'POST',
        '/api/v1/account-openings',
        tokens.requester,
        { host_id: hostId, username, full_name: 'Bench User', contact_email: 'bench@example.com', groups: ['users'], is_admin: true },
        201,
        base,
      );
      const handle = c.workflow.getHandle<typeof accountOpening>(sub.workflow_id as string);
      // Wait until the workflow has run its first task (the Update handler is registered), then settle.
      for (const deadline = Date.now() + 30_000; ; ) {
        const st = await handle.query(stateQuery).catch(() => undefined);
        if (st?.phase === 'pending') break;
        if (Date.now() > deadline) throw new Error(`${sub.workflow_id} did not reach pending`);
        await sleep(20);
      }
      if (cold) ssh.evict(hostId);
      else await ssh.exec(hostId, 'true', { timeoutMs: 15_000 }); // make sure the pooled connection is up
      await sleep(cold ? 200 : 100);

      provisionCalls = [];
      observedSsh.arm();
      const t0 = performance.now();
      await apiOk('POST', `/api/v1/account-openings/${sub.id}/approve`, tokens.approver, { notes: 'bench' }, 200, base);
      const tUpdateDone = performance.now();
      const state = await handle.result();
      const tDone = performance.now();
      if (state.phase !== 'done') throw new Error(`${variant} ${username}: workflow ended ${state.phase}: ${JSON.stringify(state.error)}`);
      const groups = (await runOk('id', ['-nG', username])).trim().split(/\s+/);
      if (!GROUPS.every((g) => groups.includes(g))) throw new Error(`${username}: groups ${groups.join(',')}`);
      const first = observedSsh.first;
      const sent = updateSentAt.get(sub.workflow_id as string);
      if (!first || sent === undefined || !provisionCalls.length) throw new Error(`${username}: observation missing`);
      return {
        variant,
        username,
        total: tDone - t0,
        provisionAttempts: provisionCalls.length,
        timeline: {
          updateSent: sent - t0,
          updateDone: tUpdateDone - t0,
          provisionStart: provisionCalls[0]! - t0,
          execCall: first.call - t0,
          execSent: first.sent - t0,
          execResult: first.result - t0,
          done: tDone - t0,
        },
      };
    };

    const ansibleRun = async (variant: string, tuned: boolean, round: number): Promise<E2eRun> => {
      const username = `hfba${randomBytes(3).toString('hex')}`;
      createdOsUsers.add(username);
      const password = generatePassword();
      // The SHA-512 crypt hash the user module needs, computed before the clock starts (a few ms).
      const hash = (await runOk('openssl', ['passwd', '-6', '-stdin'], { input: password })).trim();
      const controlDir = path.join(tmp, `cp-${round}-${tuned ? 't' : 'd'}`);
      await mkdir(controlDir);
      controlDirs.add(controlDir);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        LC_ALL: 'C.UTF-8',
        LANG: 'C.UTF-8',
        ANSIBLE_HOME: ansibleHome,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir, // a fresh ControlMaster per run: cold, like the platform's cold pool
        ...(tuned ? { ANSIBLE_PIPELINING: 'True' } : {}),
      };
      const args = [
        'all',
        '-i',
        `${sshd.host},`,
        '-u',
        sshd.adminUser,
        '--private-key',
        keyFile,
        `--ssh-common-args=-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
        '-e',
        `ansible_port=${sshd.port}`,
        ...(tuned ? ['-e', 'ansible_python_interpreter=/usr/bin/python3'] : []),
        '-b',
        '-m',
        'ansible.builtin.user',
        '-a',
        JSON.stringify({ name: username, comment: 'Bench User', shell: '/bin/bash', groups: GROUPS.join(','), append: true, password: hash }),
      ];
      const t0 = performance.now();
      const r = await run(ansible.bin, args, { env });
      if (r.code !== 0 || !/CHANGED/.test(r.stdout)) throw new Error(`ansible (${variant}) exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      const login = await sshConnect({ host: sshd.host, port: sshd.port, username, password, readyTimeout: 5000 });
      let out: string;
      try {
        out = (await execOn(login, 'id -un; id -nG')).stdout;
      } finally {
        login.end();
      }
      const tDone = performance.now();
      const [who, groupLine = ''] = out.trim().split('\n');
      const groups = groupLine.trim().split(/\s+/);
      if (who !== username || !GROUPS.every((g) => groups.includes(g))) throw new Error(`ansible (${variant}) login check: ${out}`);
      closeControlMasters(controlDir);
      controlDirs.delete(controlDir);
      return { variant, username, total: tDone - t0 };
    };

    const variants: Array<{ name: string; run: (round: number) => Promise<E2eRun> }> = [
      { name: 'platform, pool cold', run: () => platformRun('platform, pool cold', true) },
      { name: 'platform, pool warm', run: () => platformRun('platform, pool warm', false) },
      { name: 'platform before, pool warm', run: () => platformRun('platform before, pool warm', false, true) },
      { name: 'ansible defaults + ssh2 login', run: (round) => ansibleRun('ansible defaults + ssh2 login', false, round) },
      { name: 'ansible tuned + ssh2 login', run: (round) => ansibleRun('ansible tuned + ssh2 login', true, round) },
    ];
    const e2e: E2eRun[] = [];
    for (let round = 0; round <= E2E_RUNS; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(round + k) % variants.length]!;
        const r = await v.run(round);
        await removeOsUser(r.username); // not timed
        if (round > 0) e2e.push(r);
        log(`  round ${round}${round === 0 ? ' (warm-up)' : ''}: ${v.name} ${r.total.toFixed(0)} ms`);
      }
    }
    const byVariant = (name: string) => e2e.filter((r) => r.variant === name);
    const e2eStats = variants.map((v) => ({ name: v.name, runs: byVariant(v.name), s: stats(byVariant(v.name).map((r) => r.total)) }));

    console.log(`3. account opening end to end: ${E2E_RUNS} runs per variant (distinct usernames) after 1 warm-up round, variants interleaved`);
    console.log(`   platform: request submitted through the API (as test/workflows/account-opening.test.ts), workflow waiting for a`);
    console.log(`             decision; clock from the approve POST (API → approve Update) to handle.result() = 'done'. Includes the`);
    console.log(`             Update, 2 DB status activities, provisionAccount (user lookup, marker + useradd, chpasswd, groups; DB rows,`);
    console.log(`             password encrypted), verifyAccountLogin (new ssh2 password login as the user: id -un; id -nG), the final`);
    console.log(`             status + notify activities. cold = pooled admin connection evicted before the approve (an approval after`);
    console.log(`             the 60 s idle timeout); warm = pooled connection open. "platform before" = the same on the before stack of`);
    console.log(`             figure 2 (default dispatch, grpc-js client); the others run on the after stack.`);
    console.log(`   ansible:  clock from spawning \`ansible all -m ansible.builtin.user -b\` (name, comment, shell, groups users,sudo`);
    console.log(`             append, SHA-512 password hash) to the end of one ssh2 password login as the new user (id -un; id -nG).`);
    console.log(`             Includes Python start-up. Fresh ControlMaster socket dir per run (ssh defaults otherwise: ControlPersist`);
    console.log(`             60s, -C). defaults = interpreter discovery, no pipelining; tuned = ansible_python_interpreter set +`);
    console.log(`             pipelining. Host key checked against a known_hosts file. No DB, no marker, no audit trail.`);
    console.log(`${''.padEnd(40)}${'p50 ms'.padStart(9)}${'mean ms'.padStart(9)}${'min ms'.padStart(9)}${'max ms'.padStart(9)}   runs (ms)`);
    for (const v of e2eStats) {
      console.log(`${('   ' + v.name).padEnd(40)}${ms(v.s.p50, 9)}${ms(v.s.mean, 9)}${ms(v.s.min, 9)}${ms(v.s.max, 9)}   ${v.runs.map((r) => r.total.toFixed(0)).join(' ')}`);
    }
    const retried = e2e.filter((r) => (r.provisionAttempts ?? 1) > 1);
    if (retried.length) console.log(`   note: provisionAccount was retried by Temporal in ${retried.length} platform run(s): ${retried.map((r) => r.username).join(', ')}`);
    console.log(`${'   platform / ansible (p50)'.padEnd(40)}${'vs defaults'.padStart(12)}${'vs tuned'.padStart(10)}   (goal <= 0.5x)`);
    for (const p of e2eStats.slice(0, 3)) {
      console.log(`${('   ' + p.name).padEnd(40)}${ratio(p.s.p50, e2eStats[3]!.s.p50, 12)}${ratio(p.s.p50, e2eStats[4]!.s.p50, 10)}`);
    }
    console.log('');

    console.log(`4. approve Update → first remote command, from the platform runs of figure 3 (ms after the approve POST was sent)`);
    console.log(`   Update       = the API's Temporal client sends the approve Update (client interceptor on startUpdate)`);
    console.log(`   Upd.200      = the approve POST answered (the Update was accepted and its handler ran in the workflow)`);
    console.log(`   prov.        = the provisionAccount activity function entered (first attempt)`);
    console.log(`   exec()       = provisionAccount's first RemoteExecutor.exec (the user lookup), seen by a wrapping executor`);
    console.log(`   done         = handle.result() returned (figure 3's end)`);
    console.log(`   cmd          = ssh2 client.exec issued (= result time - the executor's own durationMs, ±0.5 ms): after the`);
    console.log(`                  DB lookup + TCP + SSH handshake + key auth when the pool is cold. The command starts on the host`);
    console.log(`                  one loopback round trip (channel open, exec request) plus a shell spawn later; "result" (the`);
    console.log(`                  command's exit status back in the worker) is the upper bound. Upd→cmd = cmd - Update.`);
    console.log(
      `${'   run'.padEnd(30)}${'Update'.padStart(8)}${'Upd.200'.padStart(8)}${'prov.'.padStart(8)}${'exec()'.padStart(8)}${'cmd'.padStart(8)}${'result'.padStart(8)}${'done'.padStart(9)}${'Upd→cmd'.padStart(9)}`,
    );
    for (const r of e2e.filter((x) => x.timeline)) {
      const t = r.timeline!;
      console.log(
        `${('   ' + r.variant.replace('platform, ', '')).padEnd(30)}${ms(t.updateSent)}${ms(t.updateDone)}${ms(t.provisionStart)}${ms(t.execCall)}${ms(t.execSent)}${ms(t.execResult)}${ms(t.done, 9)}${ms(t.execSent - t.updateSent, 9)}`,
      );
    }
    console.log(`${''.padEnd(46)}${'p50 ms'.padStart(9)}${'max ms'.padStart(9)}`);
    for (const name of ['platform, pool cold', 'platform, pool warm', 'platform before, pool warm']) {
      const runs = byVariant(name).map((r) => r.timeline!);
      const row = (label: string, vals: number[]) => {
        const s = stats(vals);
        console.log(`${('   ' + label).padEnd(46)}${ms(s.p50, 9)}${ms(s.max, 9)}`);
      };
      const short = name.replace('platform, ', '');
      row(`${short}: Update sent → provisionAccount`, runs.map((t) => t.provisionStart - t.updateSent));
      row(`${short}: provisionAccount → exec()`, runs.map((t) => t.execCall - t.provisionStart));
      row(`${short}: exec() → cmd sent`, runs.map((t) => t.execSent - t.execCall));
      row(`${short}: Update sent → cmd sent`, runs.map((t) => t.execSent - t.updateSent));
      row(`${short}: Update sent → first result`, runs.map((t) => t.execResult - t.updateSent));
    }
    console.log('');
    console.log(`load average at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; bench wall time ${((performance.now() - wallStart) / 1000).toFixed(1)} s (setup included)`);
  } finally {
    for (const u of [...createdOsUsers]) await removeOsUser(u).catch(() => undefined);
    for (const d of [...controlDirs]) closeControlMasters(d);
    controlDirs.clear();
    for (const [name, fn] of teardown.reverse()) {
      await fn().catch((err: unknown) => log(`teardown ${name}: ${(err as Error).message}`));
    }
    devServerProcess = undefined;
    devBeforeProcess = undefined;
    rmSync(tmp, { recursive: true, force: true });
    tmpDir = undefined;
  }
}

await main();
