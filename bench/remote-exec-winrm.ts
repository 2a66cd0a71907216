/**
 * The WinRM part of the remote-exec benchmark: one command on an open (pooled, authenticated)
 * connection, Basic over HTTPS vs NTLM with message encryption over HTTP (vs NTLM over HTTPS, the
 * same acceptor without the sealing), against the WS-Man stand-in (test/helpers/wsman-host.ts; the
 * NTLM acceptor is pyspnego's, test/helpers/wsman-auth-proxy.py). Then the per-message cost of the
 * encryption on the platform's side: NTLM seal + sign + MIME framing, and the reverse, per message.
 *
 *   npm run bench:remote-exec:winrm                 # about 1 minute
 *   BENCH_WINRM_N=100 npm run bench:remote-exec:winrm
 *
 * Needs the pyspnego venv (scripts/pyspnego.sh --install-only) and the `openssl` CLI.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { HostCredentialSchema, HostSchema } from '../db/entities/index.js';
import type { WinRmAuth } from '../db/entities/host.entity.js';
import { credentialContext } from '../activities/remote/host-targets.js';
import { WinRmExecutor } from '../activities/winrm/winrm-executor.js';
import { CLIENT_FLAGS, NtlmSession } from '../activities/winrm/ntlm.js';
import { frameEncrypted, parseEncrypted } from '../activities/winrm/wsman-encryption.js';
import { startWsManHost, type WsManHost } from '../test/helpers/wsman-host.js';

const N = Number(process.env.BENCH_WINRM_N ?? 300);
const WARMUP = 20;
const SCRIPT = "Write-Output 'ok'";

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(2)} ms  p95 ${pct(xs, 95).toFixed(2)} ms  mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)} ms`;

const modes: Array<{ name: string; auth: WinRmAuth; https: boolean; negotiate: boolean; allowBasic?: boolean }> = [
  { name: 'Basic over HTTPS', auth: 'basic', https: true, negotiate: false },
  // The same Basic through the pyspnego acceptor process: what the stand-in's extra hop costs by itself.
  { name: 'Basic over HTTPS, acceptor', auth: 'basic', https: true, negotiate: true, allowBasic: true },
  { name: 'NTLM over HTTP, encrypted', auth: 'ntlm', https: false, negotiate: true },
  { name: 'NTLM over HTTPS', auth: 'ntlm', https: true, negotiate: true },
];

const db = await initORM({ pgliteDir: 'memory://' });
const vault = new Vault(generateKeyring('bench'));
const winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 10_000 });
const stands: WsManHost[] = [];
process.stdout.write(`[bench] load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)\n`);
try {
  const hosts: string[] = [];
  for (const m of modes) {
    const ws = await startWsManHost({ https: m.https, auth: m.negotiate ? 'negotiate' : 'basic', allowBasic: m.allowBasic });
    stands.push(ws);
    const em = db.em.fork();
    const host = em.create(HostSchema, { slug: `bench-${hosts.length}`, name: m.name, address: '127.0.0.1', port: ws.port, os: 'windows', username: ws.adminUser, winrmPort: ws.port, winrmHttps: m.https, winrmAuth: m.auth });
    em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password')) });
    await em.flush();
    hosts.push(host.id);
  }
  // Opens and authenticates each pooled connection; every later exec reuses it.
  for (let i = 0; i < WARMUP; i++) for (const h of hosts) await winrm.exec(h, SCRIPT, { timeoutMs: 15_000 });
  const samples: number[][] = modes.map(() => []);
  const requestsBefore = stands.map((s) => s.requests.length);
  for (let i = 0; i < N; i++) {
    // Interleaved, so machine noise hits every row alike.
    for (let k = 0; k < hosts.length; k++) {
      const t0 = performance.now();
      const r = await winrm.exec(hosts[k]!, SCRIPT, { timeoutMs: 15_000 });
      samples[k]!.push(performance.now() - t0);
      if (r.exitCode !== 0 || r.stdout.trim() !== 'ok') throw new Error(`${modes[k]!.name}: unexpected result ${JSON.stringify(r)}`);
    }
  }
  await new Promise((r) => setTimeout(r, 500)); // the background shell deletes
  const perExec = stands.map((s, k) => (s.requests.length - requestsBefore[k]!) / N);

  process.stdout.write(`\n1. one WinRM command (${SCRIPT}) on an open connection, ${N} samples each after ${WARMUP} warm-up, interleaved\n`);
  modes.forEach((m, k) => process.stdout.write(`   ${m.name.padEnd(28)} ${fmt(samples[k]!)}   (${perExec[k]!.toFixed(1)} SOAP requests per command)\n`));
  const p50 = samples.map((s) => pct(s, 50));
  process.stdout.write(`   NTLM/HTTP encrypted − Basic/HTTPS: ${(p50[2]! - p50[0]!).toFixed(2)} ms per command at p50 (of which the acceptor hop, Basic via acceptor − Basic: ${(p50[1]! - p50[0]!).toFixed(2)} ms)\n`);
  process.stdout.write(`   NTLM/HTTP encrypted − NTLM/HTTPS (sealing on both sides vs TLS): ${(p50[2]! - p50[3]!).toFixed(2)} ms per command, ${((p50[2]! - p50[3]!) / (2 * perExec[2]!)).toFixed(2)} ms per message\n`);

  // 2. The platform's side of the encryption, per message: seal + sign + frame, and parse + unseal + verify.
  process.stdout.write(`\n2. NTLM message encryption on the platform's side, per message (client wrap + frame, then the peer's parse + unwrap, both in this process)\n`);
  const key = randomBytes(16);
  for (const size of [512, 2048, 8192, 16384]) {
    const client = new NtlmSession(key, CLIENT_FLAGS, 'client');
    const server = new NtlmSession(key, CLIENT_FLAGS, 'server');
    const data = randomBytes(size);
    const rounds = 5000;
    const wrapT: number[] = [];
    const unwrapT: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const { signature, sealed } = client.wrap(data);
      const body = frameEncrypted('application/HTTP-SPNEGO-session-encrypted', signature, sealed, data.length);
      const t1 = performance.now();
      const parsed = parseEncrypted(body, 'application/HTTP-SPNEGO-session-encrypted');
      const plain = server.unwrap(parsed.header, parsed.sealed);
      const t2 = performance.now();
      if (plain.length !== size) throw new Error('round trip lost data');
      if (i >= 200) {
        wrapT.push((t1 - t0) * 1000);
        unwrapT.push((t2 - t1) * 1000);
      }
    }
    process.stdout.write(`   ${String(size).padStart(5)} B   wrap+frame p50 ${pct(wrapT, 50).toFixed(1)} µs  p95 ${pct(wrapT, 95).toFixed(1)} µs   parse+unwrap p50 ${pct(unwrapT, 50).toFixed(1)} µs  p95 ${pct(unwrapT, 95).toFixed(1)} µs\n`);
  }
  process.stdout.write(`\n[bench] load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
} finally {
  await winrm.close();
  for (const s of stands) await s.stop();
  await db.close();
}
