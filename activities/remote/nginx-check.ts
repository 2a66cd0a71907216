import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NginxCheck {
  validated: boolean;
  ok: boolean;
  message: string;
}

function findNginx(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) if (existsSync(p)) return p;
  return null;
}

/**
 * Validates generated snippets with `nginx -t` in a throwaway prefix. Without nginx on the worker
 * the snippet cannot be validated, and that is not `ok`: onboarding with remote access fails
 * naming the cause instead of publishing an unchecked snippet. (`nginxPath: null` simulates it.)
 */
export async function checkNginxSnippet(snippet: { stream: string; http: string }, opts: { nginxPath?: string | null } = {}): Promise<NginxCheck> {
  const nginx = opts.nginxPath === undefined ? findNginx() : opts.nginxPath;
  if (!nginx) return { validated: false, ok: false, message: 'nginx is not installed on the worker, so the remote-access snippet cannot be validated (install nginx)' };
  const dir = await mkdtemp(join(tmpdir(), 'hostflow-nginx-'));
  try {
    await mkdir(join(dir, 'logs'));
    const streamModule = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find(existsSync);
    const conf = [
      streamModule ? `load_module ${streamModule};` : '',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'logs', 'error.log')};`,
      'events {}',
      snippet.stream ? `stream {\n${snippet.stream}\n}` : '',
      `http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n${snippet.http}\n}`,
    ].join('\n');
    const file = join(dir, 'nginx.conf');
    await writeFile(file, conf);
    try {
      await run(nginx, ['-t', '-q', '-p', dir, '-c', file], { timeout: 10_000 });
      return { validated: true, ok: true, message: 'nginx -t: syntax is ok' };
    } catch (err) {
      const stderr = ((err as { stderr?: string }).stderr ?? (err as Error).message).replaceAll(dir, '<tmp>');
      return { validated: true, ok: false, message: `nginx -t failed: ${stderr.trim().slice(0, 1000)}` };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
