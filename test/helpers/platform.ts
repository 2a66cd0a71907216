// The platform assembled for a test file against the real servers from global-setup:
// a fresh database (PGlite in memory, or a new PostgreSQL database), a real Temporal client and
// worker on a task queue of its own, and the real Express app listening on a free port.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { inject } from 'vitest';
import { Connection, type Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring, type Keyring } from '../../db/vault.js';
import { UserSchema, type Role } from '../../db/entities/index.js';
import { createApp } from '../../api/app.js';
import { createApiKey } from '../../api/routes/api-keys/service.js';
import { identityDefaults, type AppDeps, type IdentityDeps } from '../../api/deps.js';
import { DEFAULT_AUTH_SETTINGS, type AuthSettings } from '../../config/auth.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import type { Transporter } from 'nodemailer';
import { createMailer } from '../../config/mailer.js';
import type { NotifySettings } from '../../activities/notify/center.js';
import type { ChannelSender } from '../../activities/notify/channels/channel.js';
import type { NotifyChannel } from '../../db/entities/index.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { createLogger } from '../../config/logger.js';
import { createDatabase } from './postgres.js';
import { testClient, testPayloadKeys } from './temporal.js';

/** The Temporal Web UI origin the test platform's codec endpoint allows (CORS). */
export const TEST_UI_ORIGIN = 'http://localhost:18233';

export type DbKind = 'pglite' | 'postgres';
export const DB_KINDS: DbKind[] = ['pglite', 'postgres'];

export async function openTestDb(kind: DbKind): Promise<Db> {
  if (kind === 'pglite') return initORM({ pgliteDir: 'memory://' });
  const url = await createDatabase(inject('postgresUrl'), `hf_${randomBytes(6).toString('hex')}`);
  return initORM({ databaseUrl: url });
}

export interface TestPlatform {
  db: Db;
  vault: Vault;
  keyring: Keyring;
  /** The payload codec keyring of the client and worker. */
  payloadKeys: Keyring;
  client: Client;
  taskQueue: string;
  ssh: SshExecutor;
  winrm: WinRmExecutor;
  worker?: Worker;
  baseUrl: string;
  /** API keys (Bearer credentials) of the four seeded users. */
  tokens: Record<'admin' | 'approver' | 'operator' | 'requester', string>;
  /** Identity deps the app runs with: settings, key, hasher, the clock below. */
  identity: IdentityDeps;
  /** The injected clock: `clock.advance(ms)` moves the identity layer's time (lockouts, idle, TOTP). */
  clock: { now(): Date; advance(ms: number): void; set(d: Date): void };
  /** An API key for any user (e.g. one created through the API). */
  tokenFor(userId: string): Promise<string>;
  users: Record<'admin' | 'approver' | 'operator' | 'requester', string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON
  api<T = any>(method: string, path: string, opts?: { body?: unknown; token?: string | null }): Promise<{ status: number; body: { code: number; message: string; data: T; errors?: Array<{ field: string; message: string }>; request_id?: string } }>;
  close(): Promise<void>;
}

export async function startTestPlatform(
  opts: {
    db?: DbKind;
    worker?: boolean;
    smtpUrl?: string;
    expiryDays?: number;
    auth?: Partial<AuthSettings>;
    logger?: ReturnType<typeof createLogger>;
    /** A database of the test's own (e.g. a dedicated PostgreSQL the test stops) instead of a fresh one on the shared server. */
    databaseUrl?: string;
    /** A Temporal frontend of the test's own (e.g. a dev server the test kills) instead of the suite's. */
    temporalAddress?: string;
    /** Serve the built console (web/dist) at `/`, as `npm start` does. */
    console?: AppDeps['console'];
    /** Notification center policy and channel senders for the worker's activities. */
    notifySettings?: Partial<NotifySettings>;
    senders?: Partial<Record<NotifyChannel, ChannelSender>>;
    /** The SMTP transport pooled (default) or one session per mail. */
    smtpPool?: boolean;
    /** The payload codec keyring of the platform's client and worker (default: the suite's). */
    payloadKeys?: Keyring;
    /**
     * As `npm start` wires it: the API's client runs on the worker's NativeConnection and starts the
     * workflows it waits on eagerly (config/temporal.ts eagerStartOptions). Needs the worker.
     */
    eagerStart?: boolean;
    /** Web terminal settings (idle timeout, limits, reconnect grace, SFTP limit). */
    terminal?: AppDeps['terminal'];
    /** The API's port (default: any free one); a Temporal UI started before the API needs it for its codec endpoint. */
    port?: number;
    /** Origins allowed to call the codec endpoint (default: TEST_UI_ORIGIN). */
    codecOrigins?: string[];
  } = {},
): Promise<TestPlatform> {
  const logger = opts.logger ?? createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const db = opts.databaseUrl ? await initORM({ databaseUrl: opts.databaseUrl }) : await openTestDb(opts.db ?? 'pglite');
  const keyring = generateKeyring('test');
  const vault = new Vault(keyring);
  const address = opts.temporalAddress ?? inject('temporalAddress');
  if (opts.eagerStart && opts.worker === false) throw new Error('startTestPlatform: eagerStart needs the in-process worker');
  if (opts.eagerStart) installWorkerRuntime('WARN');
  const connection = opts.eagerStart ? await NativeConnection.connect({ address }) : await Connection.connect({ address });
  const payloadKeys = opts.payloadKeys ?? testPayloadKeys();
  const client = testClient(connection, { payloadKeys });
  const taskQueue = `test-${randomUUID()}`;
  const ssh = new SshExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
  const winrm = new WinRmExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
  const mailer: Transporter | null = createMailer(opts.smtpUrl, { pool: opts.smtpPool });
  let baseUrl = '';

  const roles: Record<keyof TestPlatform['tokens'], Role[]> = {
    admin: ['admin', 'approver', 'operator'],
    approver: ['approver'],
    operator: ['operator'],
    requester: ['requester'],
  };
  const tokens = {} as TestPlatform['tokens'];
  const users = {} as TestPlatform['users'];
  const em = db.em.fork();
  for (const [name, r] of Object.entries(roles) as Array<[keyof TestPlatform['tokens'], Role[]]>) {
    users[name] = em.create(UserSchema, { username: name, roles: r }).id;
  }
  await em.flush();
  for (const name of Object.keys(roles) as Array<keyof TestPlatform['tokens']>) {
    tokens[name] = (await createApiKey(db.em, { userId: users[name], name: 'test' })).key;
  }
  let offsetMs = 0;
  const clock = {
    now: () => new Date(Date.now() + offsetMs),
    advance: (ms: number) => void (offsetMs += ms),
    set: (d: Date) => void (offsetMs = d.getTime() - Date.now()),
  };
  const identity = identityDefaults({
    settings: { ...DEFAULT_AUTH_SETTINGS, ...opts.auth },
    clock: clock.now,
    mailer,
    mailFrom: 'Hostflow <hostflow@test>',
  });

  let worker: Awaited<ReturnType<typeof startPlatformWorker>> | undefined;
  if (opts.worker !== false) worker = await startPlatformWorker({ db, vault, ssh, winrm, mailer, logger, taskQueue, temporalAddress: opts.temporalAddress, notifySettings: opts.notifySettings, senders: opts.senders, publicBaseUrl: () => baseUrl, payloadKeys, ...(connection instanceof NativeConnection ? { connection } : {}) });

  const app = createApp({
    console: opts.console,
    terminal: opts.terminal,
    identity,
    em: db.em,
    vault,
    logger,
    temporal: { client, taskQueue, eagerStart: opts.eagerStart ?? false },
    settings: { accountOpeningExpiryDays: opts.expiryDays ?? 7 },
    codec: { corsOrigins: opts.codecOrigins ?? [TEST_UI_ORIGIN] },
    checks: {
      db: () => db.ping(),
      temporal: async () => {
        await connection.workflowService.getSystemInfo({});
      },
    },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(opts.port ?? 0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as { port: number };
  baseUrl = `http://127.0.0.1:${port}`;
  identity.publicBaseUrl = baseUrl;

  return {
    db,
    vault,
    keyring,
    payloadKeys,
    client,
    taskQueue,
    ssh,
    winrm,
    worker: worker?.worker,
    baseUrl,
    tokens,
    users,
    identity,
    clock,
    tokenFor: async (userId) => (await createApiKey(db.em, { userId, name: 'test' })).key,
    async api(method, path, o = {}) {
      const token = o.token === undefined ? tokens.admin : o.token;
      const res = await fetch(baseUrl + path, {
        method,
        headers: {
          ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    async close() {
      // Teardown logs and goes on: each step is bounded and named (a step that hangs says where
      // instead of hitting the hook timeout), and a step that throws is logged, not rethrown. A
      // teardown error must not fail a suite whose test body passed, nor keep the later steps
      // (connections, database) from being released.
      const step = async (name: string, f: () => Promise<unknown> | unknown, ms = 40_000) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            process.stderr.write(`[test-platform] close: ${name} did not finish in ${ms / 1000} s; going on\n`);
            resolve();
          }, ms);
        });
        try {
          await Promise.race([Promise.resolve().then(f), timeout]);
        } catch (err) {
          process.stderr.write(`[test-platform] close: ${name} failed (going on): ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
        } finally {
          clearTimeout(timer);
        }
      };
      await step('http server', () => new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }), 10_000);
      // Order: stop the worker taking tasks first, then release the executors' pooled SSH/WinRM
      // connections so in-flight remote activities end now instead of outliving the shutdown
      // grace and force times (a forced shutdown leaves the native worker referenced by the
      // unfinished task: "Worker still in use: Expected 1 reference, but got 2"), then wait for
      // the worker to stop; its NativeConnection is closed only after run() has settled.
      const workerStopped = worker?.stop();
      await step('ssh executor', () => ssh.close(), 10_000);
      await step('winrm executor', () => winrm.close(), 10_000);
      await step('worker', () => workerStopped);
      mailer?.close();
      await step('temporal connection', () => connection.close(), 10_000);
      await step('database', () => db.close(), 20_000);
    },
  };
}

/** A real worker (bundle from global setup) on the given task queue with the platform's dependencies. */
export async function startPlatformWorker(d: {
  db: Db;
  vault: Vault;
  ssh: SshExecutor;
  winrm: WinRmExecutor;
  mailer: Transporter | null;
  logger: ReturnType<typeof createLogger>;
  taskQueue: string;
  temporalAddress?: string;
  notifySettings?: Partial<NotifySettings>;
  senders?: Partial<Record<NotifyChannel, ChannelSender>>;
  publicBaseUrl?: () => string;
  payloadKeys?: Keyring;
  /** A NativeConnection shared with the platform's client (eagerStart): used, and left open by stop(). */
  connection?: NativeConnection;
}): Promise<{ worker: Worker; stop(): Promise<void> }> {
  installWorkerRuntime('WARN');
  const connection = d.connection ?? (await NativeConnection.connect({ address: d.temporalAddress ?? inject('temporalAddress') }));
  const worker = await createWorker({
    connection,
    namespace: 'default',
    taskQueue: d.taskQueue,
    activities: createActivities({ em: d.db.em, vault: d.vault, logger: d.logger, ssh: d.ssh, winrm: d.winrm, mailer: d.mailer, mailFrom: 'Hostflow <hostflow@test>', baseDomain: 'hosts.test', notifySettings: d.notifySettings, senders: d.senders, publicBaseUrl: d.publicBaseUrl }),
    payloadKeys: d.payloadKeys ?? testPayloadKeys(),
    workflowBundle: { codePath: inject('workflowBundlePath') },
    shutdownGraceTime: '5s',
    // A test's teardown must end: activities that ignore cancellation are abandoned after this.
    shutdownForceTime: '20s',
  });
  const run = worker.run();
  return {
    worker,
    /**
     * Initiates shutdown synchronously (before the first await), waits for run() to settle, then
     * closes the connection: the NativeConnection must outlive the worker that uses it. Errors of
     * a shutdown are logged, not thrown (see close() above).
     */
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      try {
        await run;
      } catch (err) {
        process.stderr.write(`[test-platform] worker ${d.taskQueue} stopped with an error (going on): ${err instanceof Error ? err.message : String(err)}\n`);
      }
      if (d.connection) return;
      try {
        await connection.close();
      } catch (err) {
        process.stderr.write(`[test-platform] worker connection close failed (going on): ${err instanceof Error ? err.message : String(err)}\n`);
      }
    },
  };
}

/** Starts another worker for a running test platform (e.g. after killing one). */
export function startWorkerFor(p: TestPlatform, o: { payloadKeys?: Keyring } = {}) {
  return startPlatformWorker({ db: p.db, vault: p.vault, ssh: p.ssh, winrm: p.winrm, mailer: null, logger: createLogger({ level: 'silent' }), taskQueue: p.taskQueue, payloadKeys: o.payloadKeys ?? p.payloadKeys });
}
