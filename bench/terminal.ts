/**
 * Web terminal benchmark: what the browser's path (WebSocket to the API, then ssh2 from the API to
 * the host, every session recorded as asciicast) costs against a direct ssh2 shell on the same host.
 * One process runs a Temporal dev server (child process, in memory), the real API
 * (test/helpers/platform.ts, PGlite in memory, no worker: the terminal needs none), one throwaway
 * loopback OpenSSH server (test/helpers/sshd.ts, needs root) and the clients
 * (test/helpers/term-client.ts for the terminal, ssh2 for the direct shell).
 *
 *   npm run bench:terminal                                        # about 2 minutes
 *   BENCH_TERM_N=100 BENCH_TERM_MB=20 BENCH_TERM_SESSIONS=20 npm run bench:terminal   # smoke run
 *
 * Figures:
 *   1. keystroke → echo: one printable character sent, timed until its echo arrives (bash readline
 *      in a pty echoes it), BENCH_TERM_N samples each (default 400) after 30 warm-up, interleaved
 *      terminal/direct so machine noise hits both alike; p50/p99 and the terminal/direct ratio.
 *   2. `cat` of a BENCH_TERM_MB (default 50) MB text file (base64 of random bytes) to the end marker,
 *      terminal (recording on, as always) vs direct; MB/s of pty output received and the recording's
 *      size on disk.
 *   3. BENCH_TERM_SESSIONS (default 100) concurrent terminal sessions on the one API process: RSS and
 *      CPU of the API process idle with them open, then while every session types one key every
 *      500 ms for 10 s (offsets spread), and the echo p50/p99 under that load. The 100 clients run in
 *      a separate process (bench/terminal-clients.ts, forked over IPC), so the RSS and CPU figures
 *      are the API process's own (API + PGlite in memory + Temporal client); the baseline before
 *      the sessions opened is printed next to them, with the load average.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type Client as SshClient, type ClientChannel } from 'ssh2';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureTemporalCli, startDevServer, type DevServer } from '../scripts/temporal-cli.js';
import { startTestPlatform, type TestPlatform } from '../test/helpers/platform.js';
import { freePort, sshConnect, startSshd, type SshTestHost } from '../test/helpers/sshd.js';
import { TermClient } from '../test/helpers/term-client.js';
import { AllocationSchema, CustomerSchema, HostSchema, RemoteSessionSchema, UserSchema } from '../db/entities/index.js';
import { ensureTerminalKey } from '../db/terminal-keys.js';
import { generateKeyring } from '../db/vault.js';
import { cleanUpOnExit } from './exit.js';
import { echoOnce, pct, prepare, shellOf, sleep, termShell, type Shell } from './terminal-shell.js';

const N = Number(process.env.BENCH_TERM_N ?? 400);
const MB = Number(process.env.BENCH_TERM_MB ?? 50);
const SESSIONS = Number(process.env.BENCH_TERM_SESSIONS ?? 100);
const log = (s: string) => process.stderr.write(`[bench/terminal] ${s}\n`);
const ms = (x: number) => x.toFixed(2).padStart(8);

async function directShell(client: SshClient): Promise<Shell> {
  const ch = await new Promise<ClientChannel>((res, rej) => client.shell({ term: 'xterm-256color', cols: 100, rows: 30 }, (err, s) => (err ? rej(err) : res(s))));
  return shellOf('direct', (f) => ch.on('data', f), (s) => void ch.write(s), () => client.end());
}

async function main() {
  let dev: DevServer | undefined;
  let p: TestPlatform | undefined;
  let sshd: SshTestHost | undefined;
  const clients: TermClient[] = [];
  let child: ChildProcess | undefined;
  cleanUpOnExit(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dev && dev.process.exitCode === null) dev.process.kill('SIGKILL');
  });
  try {
    log('starting the Temporal dev server, sshd and the API');
    const cli = await ensureTemporalCli({ log });
    dev = await startDevServer({ cli, port: await freePort(), uiPort: null });
    const recordingDir = await mkdtemp(path.join(os.tmpdir(), 'hf-bench-rec-'));
    p = await startTestPlatform({ db: 'pglite', worker: false, temporalAddress: dev.address, payloadKeys: generateKeyring('bench'), terminal: { maxPerUser: SESSIONS + 10, recordingDir, idleTimeoutMs: 3600_000 } });
    const tenant = `bt${randomBytes(3).toString('hex')}`;
    const em = p.db.em.fork();
    const cust = em.create(CustomerSchema, { name: 'Bench', code: `bc${randomBytes(3).toString('hex')}` });
    const member = em.create(UserSchema, { username: `m-${tenant}`, customerId: cust.id, roles: ['customer_member'] });
    const host = em.create(HostSchema, { slug: `bench-${tenant}`, name: 'bench', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    const alloc = em.create(AllocationSchema, { host, customer: cust, customerUser: member, osUsername: tenant, startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'bench' });
    await em.flush();
    const platformKey = await ensureTerminalKey(p.db.em, p.vault, alloc.id);
    const direct = ssh2.utils.generateKeyPairSync('ed25519');
    sshd = await startSshd({ users: [{ name: tenant, authorizedKeys: [platformKey, direct.public] }], extraConfig: `MaxStartups ${SESSIONS + 50}\nMaxSessions ${SESSIONS + 50}\n` });
    await p.db.em.fork().nativeUpdate(HostSchema, { id: host.id }, { port: sshd.port, hostKeyFingerprint: sshd.hostKeyFingerprintSha256 });
    const token = await p.tokenFor(member.id);
    const platform = p;
    const openTerm = async () => {
      const t = await platform.api('POST', `/api/v1/allocations/${alloc.id}/terminal/ticket`, { token });
      if (t.status !== 200) throw new Error(`ticket: ${t.status} ${JSON.stringify(t.body)}`);
      const c = await TermClient.open(platform.baseUrl, t.body.data.ticket as string);
      clients.push(c);
      return c;
    };
    const directClient = await sshConnect({ host: sshd.host, port: sshd.port, username: tenant, privateKey: direct.private });
    directClient.setNoDelay(true); // as OpenSSH's client and the API's terminal leg do

    // ---- 1. keystroke → echo ----
    const term = termShell(await openTerm());
    const dsh = await directShell(directClient);
    await prepare(term);
    await prepare(dsh);
    const lat = { term: [] as number[], direct: [] as number[] };
    const typed = { term: { n: 0 }, direct: { n: 0 } };
    log(`1. echo latency: ${N} samples each (+30 warm-up)`);
    for (let i = 0; i < N + 30; i++) {
      const a = await echoOnce(term, typed.term);
      const b = await echoOnce(dsh, typed.direct);
      if (i >= 30) {
        lat.term.push(a);
        lat.direct.push(b);
      }
    }
    for (const sh of [term, dsh]) {
      sh.write('\x15');
      await sleep(50);
    }

    // ---- 2. cat throughput ----
    log(`2. cat of a ${MB} MB file`);
    const gen = dsh.until((t) => t.includes('GEN-DONE-9'), 120_000);
    dsh.write(`head -c ${Math.round((MB * 1e6 * 3) / 4)} /dev/urandom | base64 -w 76 > ~/bench-big.txt; echo GEN-DONE-$((4+5))\n`);
    gen.sent();
    await gen.done;
    const fileBytes = (await sshConnect({ host: sshd.host, port: sshd.port, username: tenant, privateKey: direct.private }).then(async (c) => {
      const out = await new Promise<string>((res, rej) => c.exec('stat -c %s ~/bench-big.txt', (err, s) => (err ? rej(err) : (() => { let o = ''; s.on('data', (d: Buffer) => (o += d)); s.on('close', () => res(o)); })())));
      c.end();
      return Number(out.trim());
    }));
    const recBefore = await dirBytes(recordingDir);
    const cat = async (sh: Shell) => {
      const w = sh.until((t) => t.includes('CAT-END-42'), 300_000);
      w.sent();
      sh.write('cat ~/bench-big.txt; echo CAT-END-$((40+2))\n');
      return w.done;
    };
    // Alternated (direct, terminal, terminal, direct) so page cache and machine noise hit both alike.
    const dCats = [await cat(dsh)];
    const tCats = [await cat(term)];
    tCats.push(await cat(term));
    dCats.push(await cat(dsh));
    await sleep(2500); // the recorder flushes each second
    const recAfter = await dirBytes(recordingDir);
    const best = (xs: Array<{ ms: number; bytes: number }>) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const tCat = best(tCats);
    const dCat = best(dCats);
    term.close();
    dsh.close();

    // ---- 3. concurrent sessions (clients in their own process) ----
    await sleep(1500);
    const base = { rss: process.memoryUsage().rss };
    log(`3. opening ${SESSIONS} concurrent terminal sessions from a client process`);
    child = fork(fileURLToPath(new URL('./terminal-clients.ts', import.meta.url)), [p.baseUrl, alloc.id, token], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const kid = child;
    const reply = <T>(type: string) =>
      new Promise<T>((resolve, reject) => {
        const on = (m: { type: string; error?: string }) => {
          if (m.type !== type && m.type !== 'error') return;
          kid.off('message', on);
          if (m.type === type) resolve(m as T);
          else reject(new Error(`client process: ${m.error}`));
        };
        kid.on('message', on);
        kid.once('exit', (code) => reject(new Error(`client process exited (${code})`)));
      });
    await reply('up');
    const opening = reply<{ opened: number; error: string; secs: number }>('opened');
    kid.send({ cmd: 'open', n: SESSIONS });
    const { opened, error: openError, secs: openSecs } = await opening;
    await sleep(2000);
    const idleCpu0 = process.cpuUsage();
    const idleT0 = performance.now();
    await sleep(5000);
    const idle = { rss: process.memoryUsage().rss, cpu: cpuPct(process.cpuUsage(idleCpu0), performance.now() - idleT0) };
    const loadCpu0 = process.cpuUsage();
    const loadT0 = performance.now();
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);
    const typing = reply<{ lat: number[]; rss: number }>('typed');
    kid.send({ cmd: 'type', ms: 10_000 });
    const { lat: loadLat, rss: clientRss } = await typing;
    clearInterval(sampler);
    const load = { rss: process.memoryUsage().rss, peak: Math.max(peakRss, process.memoryUsage().rss), cpu: cpuPct(process.cpuUsage(loadCpu0), performance.now() - loadT0) };
    const liveRows = await p.db.em.fork().count(RemoteSessionSchema, { status: { $in: ['active', 'idle'] } });
    const loadAvg = os.loadavg();

    // ---- report ----
    const mbps = (bytes: number, t: number) => (bytes / 1e6 / (t / 1000)).toFixed(1);
    console.log(`\nbench/terminal — ${new Date().toISOString()}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log(`loopback sshd ${sshd.port}; API ${p.baseUrl} (PGlite in memory); the clients of 1. and 2. in this process, those of 3. in a child process\n`);
    console.log(`1. keystroke → echo, ${N} samples each (ms)`);
    console.log(`                        p50      p99     mean`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`   direct ssh2     ${ms(pct(lat.direct, 0.5))} ${ms(pct(lat.direct, 0.99))} ${ms(mean(lat.direct))}`);
    console.log(`   web terminal    ${ms(pct(lat.term, 0.5))} ${ms(pct(lat.term, 0.99))} ${ms(mean(lat.term))}`);
    console.log(`   ratio           ${(pct(lat.term, 0.5) / pct(lat.direct, 0.5)).toFixed(2).padStart(8)} ${(pct(lat.term, 0.99) / pct(lat.direct, 0.99)).toFixed(2).padStart(8)}`);
    console.log(`   added (ms)      ${ms(pct(lat.term, 0.5) - pct(lat.direct, 0.5))} ${ms(pct(lat.term, 0.99) - pct(lat.direct, 0.99))}`);
    console.log(`\n2. cat of a ${(fileBytes / 1e6).toFixed(1)} MB file (base64 text), to the end marker`);
    console.log(`   (best of 2 runs each; runs: direct ${dCats.map((x) => (x.ms / 1000).toFixed(2)).join(' / ')} s, terminal ${tCats.map((x) => (x.ms / 1000).toFixed(2)).join(' / ')} s)`);
    console.log(`   direct ssh2                 ${(dCat.ms / 1000).toFixed(2)} s  ${mbps(dCat.bytes, dCat.ms)} MB/s  (${(dCat.bytes / 1e6).toFixed(1)} MB pty output)`);
    console.log(`   web terminal, recording on  ${(tCat.ms / 1000).toFixed(2)} s  ${mbps(tCat.bytes, tCat.ms)} MB/s  (${(tCat.bytes / 1e6).toFixed(1)} MB; recording of both runs ${((recAfter - recBefore) / 1e6).toFixed(1)} MB on disk, compressed + encrypted)`);
    console.log(`   terminal / direct time      ${(tCat.ms / dCat.ms).toFixed(2)}×`);
    console.log(`\n3. ${opened} of ${SESSIONS} concurrent terminal sessions on one API process (${liveRows} live session rows; opened in ${openSecs.toFixed(1)} s, 5 at a time; the clients in a separate process)${openError ? `; stopped opening: ${openError}` : ''}`);
    console.log(`   load average while typing     ${loadAvg.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`   API RSS before the sessions   ${(base.rss / 2 ** 20).toFixed(0)} MiB`);
    console.log(`   API RSS, sessions open, idle  ${(idle.rss / 2 ** 20).toFixed(0)} MiB  (${idle.rss >= base.rss ? '+' : ''}${((idle.rss - base.rss) / 2 ** 20 / Math.max(1, opened)).toFixed(2)} MiB/session); API CPU ${idle.cpu}% of one core`);
    console.log(`   typing: 1 key / 500 ms each   API RSS ${(load.rss / 2 ** 20).toFixed(0)} MiB (peak ${(load.peak / 2 ** 20).toFixed(0)} MiB); API CPU ${load.cpu}% of one core; ${loadLat.length} echoes: p50 ${pct(loadLat, 0.5).toFixed(2)} ms, p99 ${pct(loadLat, 0.99).toFixed(2)} ms, max ${Math.max(...loadLat).toFixed(2)} ms`);
    console.log(`   (client process RSS ${(clientRss / 2 ** 20).toFixed(0)} MiB, not counted above)`);
  } finally {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.send({ cmd: 'close' });
      await Promise.race([gone, sleep(3000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    for (const c of clients) c.ws.terminate();
    await sleep(500);
    await sshd?.stop().catch(() => undefined);
    await p?.close().catch(() => undefined);
    await dev?.stop().catch(() => undefined);
  }
}

function cpuPct(u: NodeJS.CpuUsage, wallMs: number): string {
  return (((u.user + u.system) / 1000 / wallMs) * 100).toFixed(0);
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir, { recursive: true })) {
    const s = await stat(path.join(dir, f)).catch(() => null);
    if (s?.isFile()) total += s.size;
  }
  return total;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench/terminal] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
