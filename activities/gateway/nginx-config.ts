import type { RemoteProtocol } from '../../db/entities/index.js';

/** One open entry of the gateway: a public port that forwards to a host's service. */
export interface GatewayEntry {
  id: string;
  hostSlug: string;
  hostAddress: string;
  protocol: RemoteProtocol;
  publicDomain: string;
  publicPort: number;
  targetPort: number;
}

export interface GatewayLayout {
  /** nginx prefix (-p): pid, logs and temp dirs. */
  prefix: string;
  /** Address the listeners bind to. */
  listen: string;
  /** The stream module to load, when nginx has it as a dynamic module. */
  streamModule?: string | null;
}

export interface RenderedConfig {
  text: string;
  /** Line ranges (1-based, inclusive) of each entry's block, to name the entry nginx -t refuses. */
  blocks: Array<{ from: number; to: number; entry: GatewayEntry }>;
}

const SAFE = /^[A-Za-z0-9.:[\]_-]+$/;
const PATH = /^[A-Za-z0-9._/-]+$/;

function safe(s: string, what: string): string {
  if (!SAFE.test(s)) throw new Error(`unsafe ${what} for the nginx config: ${JSON.stringify(s)}`);
  return s;
}

const port = (n: number) => {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`bad port for the nginx config: ${n}`);
  return n;
};

const bracket = (a: string) => (a.includes(':') && !a.startsWith('[') ? `[${a}]` : a);

export const describeEntry = (e: GatewayEntry) => `${e.hostSlug} ${e.protocol} ${e.publicDomain}:${e.publicPort} -> ${e.hostAddress}:${e.targetPort} (entry ${e.id})`;

/**
 * The whole nginx config of the platform-managed gateway: TCP services (SSH, VNC, RDP, other TCP)
 * as `stream` servers, one listener per public port (TCP carries no host name to route on); HTTP
 * extras (Jupyter, TensorBoard) as `http` servers with WebSocket upgrade. Pure; every value that
 * reaches the text is checked against a strict charset (no `;`, braces, spaces or quotes).
 */
export function renderGatewayConfig(entries: GatewayEntry[], layout: GatewayLayout): RenderedConfig {
  if (!PATH.test(layout.prefix)) throw new Error(`unsafe nginx prefix: ${layout.prefix}`);
  const listen = bracket(safe(layout.listen, 'listen address'));
  const lines: string[] = [];
  const blocks: RenderedConfig['blocks'] = [];
  const push = (...l: string[]) => lines.push(...l);
  const sorted = [...entries].sort((a, b) => a.publicPort - b.publicPort);
  const block = (e: GatewayEntry, body: string[]) => {
    const from = lines.length + 1;
    push(`    # ${describeEntry(e)}`, ...body);
    blocks.push({ from, to: lines.length, entry: e });
  };
  const upstream = (e: GatewayEntry) => `${bracket(safe(e.hostAddress, 'host address'))}:${port(e.targetPort)}`;

  push('# Managed by Hostflow (gateway-sync): rewritten on every access change and by the drift schedule. Do not edit.');
  if (layout.streamModule) {
    if (!PATH.test(layout.streamModule)) throw new Error(`unsafe module path: ${layout.streamModule}`);
    push(`load_module ${layout.streamModule};`);
  }
  push(`pid ${layout.prefix}/nginx.pid;`, `error_log ${layout.prefix}/logs/error.log warn;`, 'worker_processes 1;', 'events { worker_connections 4096; }', '');
  push('stream {', '    proxy_connect_timeout 10s;', '    proxy_timeout 1h;');
  for (const e of sorted.filter((x) => x.protocol !== 'http')) {
    block(e, ['    server {', `        listen ${listen}:${port(e.publicPort)};`, `        proxy_pass ${upstream(e)};`, '    }']);
  }
  push('}', '');
  push(
    'http {',
    '    access_log off;',
    `    client_body_temp_path ${layout.prefix}/tmp/body;`,
    `    proxy_temp_path ${layout.prefix}/tmp/proxy;`,
    `    fastcgi_temp_path ${layout.prefix}/tmp/fastcgi;`,
    `    uwsgi_temp_path ${layout.prefix}/tmp/uwsgi;`,
    `    scgi_temp_path ${layout.prefix}/tmp/scgi;`,
    "    map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
  );
  for (const e of sorted.filter((x) => x.protocol === 'http')) {
    block(e, [
      '    server {',
      `        listen ${listen}:${port(e.publicPort)};`,
      `        server_name ${safe(e.publicDomain, 'domain')};`,
      '        location / {',
      `            proxy_pass http://${upstream(e)};`,
      '            proxy_http_version 1.1;',
      '            proxy_set_header Upgrade $http_upgrade;',
      '            proxy_set_header Connection $connection_upgrade;',
      '            proxy_set_header Host $host;',
      '            proxy_read_timeout 1h;',
      '        }',
      '    }',
    ]);
  }
  push('}', '');
  return { text: lines.join('\n'), blocks };
}

/** The entry whose block holds the line nginx -t names (`in <file>:<line>`), if any. */
export function entryAtError(rendered: RenderedConfig, stderr: string): GatewayEntry | null {
  const m = /:(\d+)\s*$/m.exec(stderr.split('\n').find((l) => /\[emerg\]|\[crit\]|\[alert\]/.test(l)) ?? '');
  if (!m) return null;
  const line = Number(m[1]);
  return rendered.blocks.find((b) => line >= b.from && line <= b.to)?.entry ?? null;
}
