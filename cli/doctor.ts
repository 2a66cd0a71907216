// `hostflow doctor`: what a broken installation usually gets wrong, checked one by one, each with
// ok / fail / skip, what was seen, and how to fix it. Plain functions so the test runs them against
// the real dev server, PostgreSQL and SMTP.
import { access, constants } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { parseEnv, type Env } from '../config/env.js';
import { dbTarget } from '../config/runtime.js';
import { connectClient, createTemporalClient, loadPayloadKeyring, temporalSettings } from '../config/temporal.js';
import { AesGcmPayloadCodec } from '../config/payload-codec.js';
import { createMailer } from '../config/mailer.js';
import { initORM } from '../db/orm.js';
import { loadKeyring } from '../db/vault.js';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/shared/search-attributes.js';
import { AUDIT_ARCHIVE_SCHEDULE_ID, GATEWAY_SYNC_SCHEDULE_ID, HOST_RECHECK_SCHEDULE_ID, STATUS_RECONCILER_SCHEDULE_ID } from '../worker/schedules.js';

export interface Check {
  name: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
  /** How to fix it (fail) or turn it on (skip). */
  hint?: string;
}

const run = async (name: string, f: () => Promise<Omit<Check, 'name'>>): Promise<Check> => {
  try {
    return { name, ...(await f()) };
  } catch (err) {
    return { name, status: 'fail', detail: (err as Error).message.split('\n')[0]!.slice(0, 300) };
  }
};

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer in ${ms / 1000} s`)), ms).unref())]);

export async function runDoctor(source: Record<string, string | undefined> = process.env): Promise<Check[]> {
  const checks: Check[] = [];
  let e: Env;
  try {
    e = parseEnv(source);
    checks.push({ name: 'config', status: 'ok', detail: 'every variable valid' });
  } catch (err) {
    checks.push({ name: 'config', status: 'fail', detail: (err as Error).message, hint: 'fix the variable named above (README: Configuration)' });
    return checks;
  }

  checks.push(
    await run('database', async () => {
      const db = await withTimeout(initORM(dbTarget(e), { migrate: false }), 20_000, 'database');
      try {
        await db.ping();
        const pending = await db.orm.migrator.getPending();
        if (pending.length) return { status: 'fail', detail: `${db.kind}: ${pending.length} migration(s) not applied (${pending.slice(0, 3).map((m) => m.name).join(', ')})`, hint: 'run `npm run migrate` (npm start applies them itself)' };
        return { status: 'ok', detail: `${db.kind} reachable, migrations applied` };
      } finally {
        await db.close();
      }
    }),
  );
  const dbCheck = checks.at(-1)!;
  if (dbCheck.status === 'fail' && !dbCheck.hint)
    dbCheck.hint = e.DATABASE_URL ? 'is PostgreSQL up and DATABASE_URL right (user, password, database)?' : 'embedded PGlite is single-process: stop `npm start` first, or use DATABASE_URL';

  checks.push(
    await run('vault keys', async () => {
      const ring = await loadKeyring(e.HOSTFLOW_ENCRYPTION_KEYS, join(e.DATA_DIR, 'keys'));
      return { status: 'ok', detail: `${ring.keys.size} key(s), active ${ring.activeKeyId}` };
    }),
  );

  const settings = await temporalSettings(e);
  let connection: Awaited<ReturnType<typeof connectClient>> | undefined;
  checks.push(
    await run('temporal', async () => {
      connection = await withTimeout(connectClient(settings), 12_000, settings.address);
      const info = await connection.workflowService.getSystemInfo({});
      return { status: 'ok', detail: `${settings.address} reachable (server ${info.serverVersion || 'version not reported'})` };
    }),
  );
  if (checks.at(-1)!.status === 'fail') checks.at(-1)!.hint = e.TEMPORAL_ADDRESS ? 'is the cluster up and TEMPORAL_ADDRESS (and its TLS / API key settings) right?' : 'start the embedded dev server with `npm start`, or set TEMPORAL_ADDRESS';

  if (connection) {
    const conn = connection;
    checks.push(
      await run('namespace', async () => {
        await conn.workflowService.describeNamespace({ namespace: settings.namespace });
        return { status: 'ok', detail: `${settings.namespace} exists` };
      }),
    );
    if (checks.at(-1)!.status === 'fail') checks.at(-1)!.hint = `create it (temporal operator namespace create -n ${settings.namespace}) or fix TEMPORAL_NAMESPACE`;
    checks.push(
      await run('search attributes', async () => {
        const r = await conn.operatorService.listSearchAttributes({ namespace: settings.namespace });
        const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (r.customAttributes ?? {}))).map((k) => k.name);
        if (missing.length) return { status: 'fail', detail: `missing: ${missing.join(', ')}`, hint: `the worker registers them when it may; else: ${missing.map((m) => `temporal operator search-attribute create --namespace ${settings.namespace} --name ${m} --type Keyword`).join(' && ')}` };
        return { status: 'ok', detail: ALL_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ') };
      }),
    );
    const ring = await loadPayloadKeyring(e).catch((err: Error) => err);
    checks.push(
      await run('payload keys', async () => {
        if (ring instanceof Error) throw ring;
        // Round trip, then a recent run's payload: a key missing from the ring shows here.
        const codec = new AesGcmPayloadCodec(ring);
        const [enc] = await codec.encode([{ metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('"doctor"') }]);
        const [dec] = await codec.decode([enc!]);
        if (new TextDecoder().decode(dec!.data!) !== '"doctor"') return { status: 'fail', detail: 'codec round trip returned something else' };
        const client = createTemporalClient({ connection: conn, namespace: settings.namespace, payloadKeys: ring });
        let probed = 'no run to probe';
        for await (const wf of client.workflow.list({ pageSize: 1 })) {
          const hist = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
          const input = hist.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
          const encrypted = input.filter((p) => new TextDecoder().decode(p.metadata?.encoding ?? new Uint8Array()) === 'binary/encrypted');
          const ids = [...new Set(encrypted.map((p) => new TextDecoder().decode(p.metadata?.['encryption-key-id'] ?? new Uint8Array())))];
          const unknown = ids.filter((id) => !ring.keys.has(id));
          if (unknown.length) return { status: 'fail', detail: `run ${wf.workflowId} is encrypted under key(s) ${unknown.join(', ')}, not in the ring`, hint: 'keep old keys after the new one in HOSTFLOW_PAYLOAD_KEYS (rotation), on every API and worker process' };
          probed = `latest run ${wf.workflowId} decodes`;
          break;
        }
        return { status: 'ok', detail: `${ring.keys.size} key(s), active ${ring.activeKeyId}; ${probed}` };
      }),
    );
    if (checks.at(-1)!.status === 'fail' && !checks.at(-1)!.hint) checks.at(-1)!.hint = 'HOSTFLOW_PAYLOAD_KEYS: keyId:base64(32 bytes)[,…], the same ring on every process';
    checks.push(
      await run('schedules', async () => {
        const client = createTemporalClient({ connection: conn, namespace: settings.namespace, payloadKeys: ring instanceof Error ? { activeKeyId: 'none', keys: new Map() } : ring });
        const want = [HOST_RECHECK_SCHEDULE_ID, STATUS_RECONCILER_SCHEDULE_ID, AUDIT_ARCHIVE_SCHEDULE_ID, ...(e.GATEWAY_NGINX_CONF ? [GATEWAY_SYNC_SCHEDULE_ID] : [])];
        const missing: string[] = [];
        for (const id of want) {
          try {
            await client.schedule.getHandle(id).describe();
          } catch {
            missing.push(id);
          }
        }
        if (missing.length) return { status: 'fail', detail: `missing: ${missing.join(', ')}`, hint: 'the worker creates them at start: is a worker running (npm start / npm run worker) on this namespace?' };
        return { status: 'ok', detail: want.join(', ') };
      }),
    );
    await conn.close();
  } else {
    for (const name of ['namespace', 'search attributes', 'payload keys', 'schedules']) checks.push({ name, status: 'skip', detail: 'Temporal unreachable' });
  }

  checks.push(
    await run('smtp', async () => {
      if (!e.SMTP_URL) return { status: 'skip', detail: 'SMTP_URL unset: email is recorded as suppressed', hint: 'set SMTP_URL=smtp://user:pass@host:587 to send mail' };
      const m = createMailer(e.SMTP_URL, { pool: false })!;
      try {
        await withTimeout(m.verify(), 15_000, 'SMTP');
        return { status: 'ok', detail: `${new URL(e.SMTP_URL).host} accepts a session` };
      } finally {
        m.close();
      }
    }),
  );
  if (checks.at(-1)!.status === 'fail') checks.at(-1)!.hint = 'check SMTP_URL (host, port, credentials, TLS); `npm run mail-catcher`-style local servers need smtp:// not smtps://';

  checks.push(
    await run('nginx gateway', async () => {
      if (!e.GATEWAY_NGINX_CONF) return { status: 'skip', detail: 'GATEWAY_NGINX_CONF unset: no gateway managed', hint: 'set GATEWAY_NGINX_CONF to let gateway-sync serve remote access' };
      await access(e.GATEWAY_NGINX_BIN, constants.X_OK).catch(() => {
        throw new Error(`${e.GATEWAY_NGINX_BIN} is not an executable`);
      });
      const conf = await access(e.GATEWAY_NGINX_CONF).then(() => true, () => false);
      if (!conf) return { status: 'ok', detail: `${e.GATEWAY_NGINX_BIN} found; ${e.GATEWAY_NGINX_CONF} not written yet (the first gateway-sync writes it)` };
      const { stderr } = await promisify(execFile)(e.GATEWAY_NGINX_BIN, ['-t', '-q', '-c', e.GATEWAY_NGINX_CONF, ...(e.GATEWAY_NGINX_PREFIX ? ['-p', e.GATEWAY_NGINX_PREFIX] : [])], { timeout: 10_000 }).catch((err: { stderr?: string; message: string }) => {
        throw new Error(`nginx -t: ${(err.stderr || err.message).trim().split('\n')[0]}`);
      });
      return { status: 'ok', detail: `nginx -t passes for ${e.GATEWAY_NGINX_CONF}${stderr.trim() ? ` (${stderr.trim().split('\n')[0]})` : ''}` };
    }),
  );
  if (checks.at(-1)!.status === 'fail') checks.at(-1)!.hint = 'check GATEWAY_NGINX_BIN / GATEWAY_NGINX_CONF / GATEWAY_NGINX_PREFIX; `nginx -t -c <conf>` shows the line';
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}${c.hint && c.status !== 'ok' ? `\n      → ${c.hint}` : ''}`).join('\n');
}
