import type { RemoteProtocol } from '../../db/entities/index.js';

/**
 * Seed 001 §3.5's default map (22→2222, 5900→15900, 3389→13389) cannot hold on a shared gateway:
 * every host would want 2222. Public ports come from the configured pool instead (port-pool.ts),
 * unique per gateway; an explicit override is still honoured when it lies in the pool.
 */
const HTTP_PORTS = new Set([6006, 8888, 8080, 3000, 7860]);

export interface RemoteAccessSpec {
  enabled: boolean;
  /** Overrides `<slug>.<base_domain>`. */
  domain?: string;
  /** Services to expose by protocol; default: ssh for Linux, rdp for Windows. */
  protocols?: Array<'ssh' | 'vnc' | 'rdp'>;
  /** Extra target ports (e.g. 6006 TensorBoard, 8888 Jupyter). */
  extraPorts?: number[];
  /** Public port overrides, by target port. */
  publicPorts?: Record<string, number>;
}

export interface PlannedEntry {
  protocol: RemoteProtocol;
  publicDomain: string;
  /** An explicit override; null = the next free port of the pool. */
  publicPort: number | null;
  targetPort: number;
}

const TARGET_PORT: Record<'ssh' | 'vnc' | 'rdp', number> = { ssh: 22, vnc: 5900, rdp: 3389 };

/** Domain and service plan for a host; pure. Ports are assigned from the pool on save (port-pool.ts). */
export function planRemoteAccess(host: { slug: string; os: 'linux' | 'windows'; port: number }, spec: RemoteAccessSpec, baseDomain: string): PlannedEntry[] {
  if (!spec.enabled) return [];
  const domain = (spec.domain ?? `${host.slug}.${baseDomain}`).toLowerCase();
  const protocols = spec.protocols ?? (host.os === 'windows' ? ['rdp'] : ['ssh']);
  const entries: PlannedEntry[] = [];
  for (const proto of protocols) {
    const target = proto === 'ssh' ? host.port : TARGET_PORT[proto];
    entries.push({ protocol: proto, publicDomain: domain, targetPort: target, publicPort: spec.publicPorts?.[String(target)] ?? null });
  }
  for (const port of spec.extraPorts ?? []) {
    entries.push({ protocol: HTTP_PORTS.has(port) ? 'http' : 'tcp', publicDomain: domain, targetPort: port, publicPort: spec.publicPorts?.[String(port)] ?? null });
  }
  return entries;
}

/**
 * The nginx configuration for a host's entries: TCP services in a `stream` block (one listener per
 * public port: TCP has no host name to route on), HTTP services in `http` server blocks routed by
 * `server_name`. Values are validated before they reach here (domain and address charset, ports).
 */
export function nginxSnippet(host: { slug: string; address: string }, entries: Array<Omit<PlannedEntry, 'publicPort'> & { publicPort: number }>): { stream: string; http: string } {
  const safe = (s: string) => {
    if (!/^[A-Za-z0-9.:[\]-]+$/.test(s)) throw new Error(`unsafe value for nginx config: ${s}`);
    return s;
  };
  const upstream = (port: number) => `${safe(host.address.includes(':') && !host.address.startsWith('[') ? `[${host.address}]` : host.address)}:${port}`;
  const tcp = entries.filter((e) => e.protocol !== 'http');
  const http = entries.filter((e) => e.protocol === 'http');
  const stream = tcp
    .map((e) => `# ${safe(host.slug)} ${e.protocol}: ${safe(e.publicDomain)}:${e.publicPort} -> ${e.targetPort}\nserver {\n    listen ${e.publicPort};\n    proxy_connect_timeout 10s;\n    proxy_timeout 1h;\n    proxy_pass ${upstream(e.targetPort)};\n}\n`)
    .join('\n');
  const httpConf = http
    .map(
      (e) =>
        `# ${safe(host.slug)} http: ${safe(e.publicDomain)}:${e.publicPort} -> ${e.targetPort}\nserver {\n    listen ${e.publicPort};\n    server_name ${safe(e.publicDomain)};\n    location / {\n        proxy_pass http://${upstream(e.targetPort)};\n        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection "upgrade";\n        proxy_set_header Host $host;\n    }\n}\n`,
    )
    .join('\n');
  return { stream, http: httpConf };
}
