// The API, a worker and a real SMTP server against the Java time-skipping test server and an
// in-memory PGlite: what the registration and role-grant tests share.
import { identityDefaults } from '../../api/deps.js';
import { DEFAULT_AUTH_SETTINGS } from '../../config/auth.js';
import type { Server } from 'node:http';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { inject } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createTransport } from 'nodemailer';
import { simpleParser } from 'mailparser';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { startSmtp } from '../helpers/smtp.js';
import { decodedHistoryText, decryptHistoryJson } from '../helpers/history.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { DepartmentSchema, UserSchema, type Role } from '../../db/entities/index.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { createApp } from '../../api/app.js';
import { createApiKey } from '../../api/routes/api-keys/service.js';
import { testDataConverter } from '../helpers/temporal.js';

export const PUBLIC_BASE = 'https://hostflow.example.test';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Harness {
  env: TestWorkflowEnvironment;
  db: Db;
  /** The worker's vault (endpoint secrets, the link-signing key). */
  vault: Vault;
  taskQueue: string;
  smtp: Awaited<ReturnType<typeof startSmtp>>;
  // Envelopes are read loosely in tests (each assertion names what it expects).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api: (method: string, path: string, token: string | null, body?: unknown) => Promise<{ status: number; body: { code: number; message: string; data: any; errors?: Array<{ field: string }> } }>;
  /** Creates a user with an API token (and an email); returns id and token. */
  user: (username: string, roles: Role[], email?: string) => Promise<{ id: string; token: string; email: string }>;
  department: (name: string, admins: string[]) => Promise<string>;
  /** Parsed mails received so far. */
  mails: () => Promise<Mail[]>;
  /** Waits (real time) until `pick` finds a mail. */
  waitForMail: (pick: (m: Mail) => boolean, what: string) => Promise<Mail>;
  /** Real-time polling of a condition (activities run in real time). */
  until: <T>(fn: () => Promise<T | null | undefined | false>, what: string, ms?: number) => Promise<T>;
  /** Fails if any secret appears in the (decoded) history of one of these workflows. */
  assertNoSecretsInHistories: (workflowIds: string[], secrets: string[]) => Promise<void>;
  /**
   * With CAPTURE_HISTORIES=1, writes the run's history to test/replay/histories/<name>.json for the
   * replay test (never overwriting one: recorded histories are the old runs replay protects).
   */
  captureHistory: (workflowId: string, name: string) => Promise<void>;
  close: () => Promise<void>;
}

export async function startHarness(taskQueue: string): Promise<Harness> {
  const [env, db, smtp] = await Promise.all([createTimeSkippingEnv(), initORM({ pgliteDir: 'memory://' }), startSmtp()]);
  const vault = new Vault(generateKeyring('t'));
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const worker = await Worker.create({ dataConverter: testDataConverter(),
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    activities: createActivities({
      em: db.em,
      vault,
      logger,
      ssh: new SshExecutor({ em: db.em, vault }),
      winrm: new WinRmExecutor({ em: db.em, vault }),
      mailer: createTransport(smtp.url),
      mailFrom: 'hostflow@test',
      baseDomain: 'hosts.test',
      publicBaseUrl: PUBLIC_BASE,
    }),
  });
  const run = worker.run();
  const app = createApp({
    em: db.em,
    vault,
    logger,
    temporal: { client: env.client, taskQueue },
    settings: { accountOpeningExpiryDays: 7, registrationStepDays: 7 },
    // These tests submit more registrations from 127.0.0.1 than the default 5 per hour; the limit
    // itself is tested in test/api/auth.test.ts.
    identity: identityDefaults({ settings: { ...DEFAULT_AUTH_SETTINGS, registrationRateLimit: { max: 0, windowMinutes: 60 } } }),
    checks: { db: async () => undefined, temporal: async () => undefined },
  });
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const parsed = new Map<number, Mail>();
  const mails = async () => {
    for (let i = 0; i < smtp.messages.length; i++) {
      if (parsed.has(i)) continue;
      const m = await simpleParser(smtp.messages[i]!.raw);
      parsed.set(i, { to: smtp.messages[i]!.to.join(','), subject: m.subject ?? '', text: m.text ?? '' });
    }
    return [...parsed.entries()].sort((a, b) => a[0] - b[0]).map(([, m]) => m);
  };
  const until = async <T>(fn: () => Promise<T | null | undefined | false>, what: string, ms = 15_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  return {
    env,
    db,
    vault,
    taskQueue,
    smtp,
    api: async (method, path, token, body) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as never };
    },
    user: async (username, roles, email = `${username}@example.com`) => {
      const em = db.em.fork();
      const u = em.create(UserSchema, { username, email, roles });
      await em.flush();
      const token = (await createApiKey(db.em, { userId: u.id, name: 'test' })).key;
      return { id: u.id, token, email };
    },
    department: async (name, admins) => {
      const em = db.em.fork();
      const d = em.create(DepartmentSchema, { name, admins });
      await em.flush();
      return d.id;
    },
    mails,
    waitForMail: async (pick, what) => until(async () => (await mails()).find(pick), `mail: ${what}`),
    until,
    assertNoSecretsInHistories: async (ids, secrets) => {
      for (const id of ids) {
        const json = historyToJSON(await env.client.workflow.getHandle(id).fetchHistory());
        const plain = decryptHistoryJson(json, env.client);
        const text = json + decodedHistoryText(json) + plain + decodedHistoryText(plain);
        for (const s of secrets) if (s && text.includes(s)) throw new Error(`secret found in history of ${id}`);
      }
    },
    captureHistory: async (workflowId, name) => {
      if (!process.env.CAPTURE_HISTORIES) return;
      const file = fileURLToPath(new URL(`../replay/histories/${name}.json`, import.meta.url));
      if (existsSync(file)) return;
      await writeFile(file, decryptHistoryJson(historyToJSON(await env.client.workflow.getHandle(workflowId).fetchHistory()), env.client));
    },
    close: async () => {
      server.close();
      worker.shutdown();
      await run;
      await env.teardown();
      await smtp.stop();
      await db.close();
    },
  };
}
