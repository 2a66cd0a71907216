import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import { recordAudit } from '../../db/audit.js';
import { describeEntry, entryAtError, renderGatewayConfig, type GatewayEntry } from './nginx-config.js';

const run = promisify(execFile);

/** Allocation statuses in which the customer's entries are open; otherwise they are closed. */
export const OPEN_ALLOCATION_STATUSES = ['provisioning', 'active', 'buffer'] as const;

export interface GatewayConfig {
  /** The gateway whose entries this nginx serves (REMOTE_ACCESS_GATEWAY_ADDRESS). */
  gateway: string;
  /** The config file gateway-sync owns (GATEWAY_NGINX_CONF). */
  confPath: string;
  nginxBin: string;
  /** nginx -p (GATEWAY_NGINX_PREFIX; default the config's directory). */
  prefix?: string;
  /** Listen address (GATEWAY_LISTEN_ADDRESS). */
  listen: string;
}

/** The gateway settings from the environment (config/env.ts); null when GATEWAY_NGINX_CONF is unset. */
export function gatewayConfigFromEnv(e: {
  REMOTE_ACCESS_BASE_DOMAIN: string;
  REMOTE_ACCESS_GATEWAY_ADDRESS?: string;
  GATEWAY_NGINX_CONF?: string;
  GATEWAY_NGINX_BIN: string;
  GATEWAY_NGINX_PREFIX?: string;
  GATEWAY_LISTEN_ADDRESS: string;
}): GatewayConfig | null {
  if (!e.GATEWAY_NGINX_CONF) return null;
  return {
    gateway: e.REMOTE_ACCESS_GATEWAY_ADDRESS ?? e.REMOTE_ACCESS_BASE_DOMAIN,
    confPath: e.GATEWAY_NGINX_CONF,
    nginxBin: e.GATEWAY_NGINX_BIN,
    ...(e.GATEWAY_NGINX_PREFIX ? { prefix: e.GATEWAY_NGINX_PREFIX } : {}),
    listen: e.GATEWAY_LISTEN_ADDRESS,
  };
}

export interface GatewayDeps {
  em: SqlEntityManager;
  logger: Logger;
  /** Unset: no gateway is managed here. */
  gatewayConfig?: GatewayConfig | null;
}

export interface GatewaySyncResult {
  status: 'applied' | 'unchanged' | 'not-configured';
  entries: number;
  /** sha256 of the config now running. */
  sha256: string | null;
  /** What was done to the nginx process. */
  nginx: 'reloaded' | 'started' | 'none';
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** The gateway's open entries: enabled, on this gateway, and the host held by an allocation that is provisioning, active or in buffer. */
export async function openGatewayEntries(em: SqlEntityManager, gateway: string): Promise<GatewayEntry[]> {
  const rows = await em.getConnection().execute<Array<{ id: string; slug: string; address: string; protocol: GatewayEntry['protocol']; public_domain: string; public_port: number; target_port: number }>>(
    `select r.id, h.slug, h.address, r.protocol, r.public_domain, r.public_port, r.target_port
       from remote_access r join hosts h on h.id = r.host_id
      where r.gateway = ? and r.enabled = true
        and exists (select 1 from allocations a where a.host_id = r.host_id and a.status in (${OPEN_ALLOCATION_STATUSES.map(() => '?').join(', ')}))
      order by r.public_port`,
    [gateway, ...OPEN_ALLOCATION_STATUSES],
  );
  return rows.map((r) => ({ id: r.id, hostSlug: r.slug, hostAddress: r.address, protocol: r.protocol, publicDomain: r.public_domain, publicPort: Number(r.public_port), targetPort: Number(r.target_port) }));
}

/** Applies one sync at a time in this process (the rename + reload pair must not interleave). */
let chain: Promise<unknown> = Promise.resolve();

async function pidAlive(pidFile: string): Promise<boolean> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    if (!pid) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Renders the open entries into the gateway's nginx config and makes nginx run it:
 * 1. render (pure) and compare with the file on disk and the running process: nothing drifted → `unchanged`;
 * 2. write a candidate next to the config and check it with `nginx -t` (the candidate, not the live file);
 *    a refusal leaves the running config untouched and fails non-retryably naming the entry;
 * 3. rename the candidate over the config (atomic on one file system) and `nginx -s reload`, or
 *    start nginx when it is not running (platform-managed); a failed reload restores the old file.
 */
export async function syncGateway(deps: GatewayDeps, input: { reason: string; actor?: string }): Promise<GatewaySyncResult> {
  const cfg = deps.gatewayConfig;
  if (!cfg) {
    deps.logger.warn({ reason: input.reason }, 'gateway-sync: no gateway configured (GATEWAY_NGINX_CONF unset); remote-access entries are not served');
    return { status: 'not-configured', entries: 0, sha256: null, nginx: 'none' };
  }
  const next = chain.then(() => apply(deps, cfg, input));
  chain = next.catch(() => undefined);
  return next;
}

async function apply(deps: GatewayDeps, cfg: GatewayConfig, input: { reason: string; actor?: string }): Promise<GatewaySyncResult> {
  const prefix = cfg.prefix ?? dirname(cfg.confPath);
  const em = deps.em.fork();
  const entries = await openGatewayEntries(em, cfg.gateway);
  const streamModule = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find((p) => existsSync(p)) ?? null;
  let rendered;
  try {
    rendered = renderGatewayConfig(entries, { prefix, listen: cfg.listen, streamModule });
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`gateway config not rendered: ${(err as Error).message}`, 'GatewayConfigInvalid');
  }
  const current = existsSync(cfg.confPath) ? await readFile(cfg.confPath, 'utf8') : null;
  const running = await pidAlive(join(prefix, 'nginx.pid'));
  if (current === rendered.text && running) return { status: 'unchanged', entries: entries.length, sha256: sha(current), nginx: 'none' };

  await mkdir(join(prefix, 'logs'), { recursive: true });
  await mkdir(join(prefix, 'tmp'), { recursive: true });
  const candidate = `${cfg.confPath}.${randomBytes(4).toString('hex')}.candidate`;
  await writeFile(candidate, rendered.text, { mode: 0o640 });
  try {
    try {
      await run(cfg.nginxBin, ['-t', '-q', '-p', prefix, '-c', candidate], { timeout: 20_000 });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message);
      const broken = entryAtError(rendered, stderr);
      const detail = stderr.split('\n').find((l) => /\[emerg\]|\[crit\]|\[alert\]/.test(l))?.replace(/^.*?\[(emerg|crit|alert)\]\s*\d+#\d+:\s*/, '').replaceAll(candidate, '<candidate>') ?? stderr.trim().slice(0, 500);
      const message = broken ? `nginx -t refused the gateway config at ${describeEntry(broken)}: ${detail}; the running config is unchanged` : `nginx -t refused the gateway config: ${detail}; the running config is unchanged`;
      await audit(deps, input, 'gateway.sync.failed', { reason: input.reason, entry: broken?.id ?? null, host: broken?.hostSlug ?? null, error: detail });
      throw ApplicationFailure.nonRetryable(message, 'GatewayConfigInvalid', { entryId: broken?.id ?? null });
    }
    const backup = `${cfg.confPath}.previous`;
    if (current !== null) await writeFile(backup, current);
    await rename(candidate, cfg.confPath);
    let nginx: GatewaySyncResult['nginx'];
    try {
      if (running) {
        await run(cfg.nginxBin, ['-p', prefix, '-c', cfg.confPath, '-s', 'reload'], { timeout: 20_000 });
        nginx = 'reloaded';
      } else {
        await run(cfg.nginxBin, ['-p', prefix, '-c', cfg.confPath], { timeout: 20_000 });
        nginx = 'started';
      }
    } catch (err) {
      if (current !== null) await rename(backup, cfg.confPath);
      throw ApplicationFailure.retryable(`nginx ${running ? 'reload' : 'start'} failed (old config restored): ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim().slice(0, 500)}`, 'GatewayReloadFailed');
    }
    // nginx applies a reload asynchronously: wait until the listeners match the config, so the caller
    // (a reclaim closing access, an allocation about to send the summary) can rely on the result.
    const converged = await waitForListeners(cfg.listen, rendered.text, current);
    if (!converged.ok) throw ApplicationFailure.retryable(`nginx ${nginx} but its listeners did not follow within 10 s: ${converged.detail}`, 'GatewayReloadFailed');
    await audit(deps, input, 'gateway.sync', { reason: input.reason, entries: entries.length, nginx, sha256: sha(rendered.text) });
    deps.logger.info({ reason: input.reason, entries: entries.length, nginx }, 'gateway-sync applied');
    return { status: 'applied', entries: entries.length, sha256: sha(rendered.text), nginx };
  } finally {
    await rm(candidate, { force: true });
  }
}

const listenPorts = (conf: string | null) => new Set([...(conf ?? '').matchAll(/^\s*listen\s+\S*:(\d+);/gm)].map((m) => Number(m[1])));

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.connect(port, host);
  });
}

/** Polls until every port of the new config accepts and every port only the old one had refuses. */
async function waitForListeners(listen: string, next: string, previous: string | null): Promise<{ ok: boolean; detail: string }> {
  const host = listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen.replace(/^\[|\]$/g, '');
  const open = listenPorts(next);
  const closed = [...listenPorts(previous)].filter((p) => !open.has(p));
  let detail = '';
  for (let i = 0; i < 100; i++) {
    const notOpen: number[] = [];
    const notClosed: number[] = [];
    for (const p of open) if (!(await accepts(host, p))) notOpen.push(p);
    for (const p of closed) if (await accepts(host, p)) notClosed.push(p);
    if (!notOpen.length && !notClosed.length) return { ok: true, detail: '' };
    detail = `${notOpen.length ? `not listening on ${notOpen.join(', ')}` : ''}${notClosed.length ? ` still listening on ${notClosed.join(', ')}` : ''}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ok: false, detail };
}

async function audit(deps: GatewayDeps, input: { actor?: string }, action: string, detail: Record<string, unknown>) {
  const em = deps.em.fork();
  recordAudit(em, { actor: input.actor ?? 'gateway-sync', actorType: input.actor ? 'user' : 'system', action, targetType: 'gateway', targetId: deps.gatewayConfig?.gateway ?? 'none', result: action.endsWith('failed') ? 'failure' : 'success', detail });
  await em.flush();
}

export function createGatewayActivities(deps: GatewayDeps) {
  return {
    /** gateway-sync's one step: render, `nginx -t`, atomic swap, reload. */
    syncGateway: (input: { reason: string; actor?: string }) => syncGateway(deps, input),
  };
}
