import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { nginxSnippet, planRemoteAccess } from '../../activities/remote/remote-access.js';
import { checkNginxSnippet } from '../../activities/remote/nginx-check.js';
import type { PlannedEntry } from '../../activities/remote/remote-access.js';

/** Ports as the pool would hand them out (20000, 20001, ...), for rendering. */
const withPorts = (plan: PlannedEntry[]) => plan.map((e, i) => ({ ...e, publicPort: e.publicPort ?? 20000 + i }));

describe('remote access: domain/port plan and nginx snippet', () => {
  const host = { slug: 'gpu-01', os: 'linux' as const, port: 22, address: '10.0.0.5' };

  it('plans <slug>.<base_domain> with its services and extra ports (public ports come from the pool on save)', () => {
    expect(planRemoteAccess(host, { enabled: true, protocols: ['ssh', 'vnc'], extraPorts: [6006, 8888, 9000] }, 'hosts.example.com')).toEqual([
      { protocol: 'ssh', publicDomain: 'gpu-01.hosts.example.com', publicPort: null, targetPort: 22 },
      { protocol: 'vnc', publicDomain: 'gpu-01.hosts.example.com', publicPort: null, targetPort: 5900 },
      { protocol: 'http', publicDomain: 'gpu-01.hosts.example.com', publicPort: null, targetPort: 6006 },
      { protocol: 'http', publicDomain: 'gpu-01.hosts.example.com', publicPort: null, targetPort: 8888 },
      { protocol: 'tcp', publicDomain: 'gpu-01.hosts.example.com', publicPort: null, targetPort: 9000 },
    ]);
    expect(planRemoteAccess({ ...host, os: 'windows' }, { enabled: true, domain: 'Desk.Example.com', publicPorts: { '3389': 23389 } }, 'x')).toEqual([
      { protocol: 'rdp', publicDomain: 'desk.example.com', publicPort: 23389, targetPort: 3389 },
    ]);
    expect(planRemoteAccess(host, { enabled: false }, 'x')).toEqual([]);
  });

  it('renders stream and http blocks and refuses unsafe values', () => {
    const s = nginxSnippet(host, withPorts(planRemoteAccess(host, { enabled: true, extraPorts: [8888] }, 'hosts.example.com')));
    expect(s.stream).toContain('listen 20000;');
    expect(s.stream).toContain('proxy_pass 10.0.0.5:22;');
    expect(s.http).toContain('server_name gpu-01.hosts.example.com;');
    expect(s.http).toContain('proxy_pass http://10.0.0.5:8888;');
    expect(() => nginxSnippet({ ...host, address: '10.0.0.5; include /etc/passwd' }, [{ protocol: 'ssh', publicDomain: 'a.b', publicPort: 1, targetPort: 22 }])).toThrow(/unsafe/);
  });

  it('nginx -t accepts the generated snippet and rejects a broken one (nginx is required here: CI installs it)', async () => {
    expect(existsSync('/usr/sbin/nginx'), 'nginx is not installed: this test needs it (apt-get install nginx; .ci/run installs it)').toBe(true);
    const good = await checkNginxSnippet(nginxSnippet(host, withPorts(planRemoteAccess(host, { enabled: true, protocols: ['ssh', 'vnc'], extraPorts: [6006, 8888] }, 'hosts.example.com'))));
    expect(good).toEqual({ validated: true, ok: true, message: 'nginx -t: syntax is ok' });
    const bad = await checkNginxSnippet({ stream: 'server { listen 1; proxy_pass ; }', http: '' });
    expect(bad.ok).toBe(false);
    expect(bad.message).toContain('proxy_pass');
  });

  it('without nginx a snippet is not validated and not ok', async () => {
    const r = await checkNginxSnippet(nginxSnippet(host, withPorts(planRemoteAccess(host, { enabled: true }, 'hosts.example.com'))), { nginxPath: null });
    expect(r).toMatchObject({ validated: false, ok: false });
    expect(r.message).toMatch(/not installed/);
  });
});
