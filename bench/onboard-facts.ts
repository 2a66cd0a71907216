/**
 * Facts collection benchmark: the platform against `ansible -m setup`, on the same loopback hosts.
 *
 *   npm run bench:onboard-facts                 # 50 hosts, 1 warm-up + 3 measured runs per figure (5-9 min)
 *   BENCH_RUNS=1 npm run bench:onboard-facts    # smoke run
 *   BENCH_TEMPORAL=0 npm run bench:onboard-facts   # skip the two figures that go through Temporal
 *   BENCH_DATABASE_URL=postgres://… npm run bench:onboard-facts   # a fresh database on that server
 *
 * Hosts: BENCH_HOSTS (50) real OpenSSH daemons on 127.0.0.1, one per host, each with its own port,
 * host key and admin user (test/helpers/sshd.ts; needs root). The fake `nvidia-smi` of
 * test/fixtures/bin is first on their PATH, so the GPU section of the facts is exercised too.
 * Everyone logs in with the admin user's ed25519 key.
 *
 * Figures, each the wall time for all hosts, from the first connection to the last answer. Every
 * run starts cold: no open SSH connection (a new SshExecutor per run; a new ControlPath dir per
 * Ansible run). One unmeasured warm-up run precedes the measured runs of each figure.
 *   floors       raw ssh2: connect + key auth + exec, all hosts in parallel, no DB: once with `true`
 *                (the cost of SSH alone), once with LINUX_FACTS_COMMAND (the floor for the platform)
 *   platform (a) createActivities(...).collectHostFacts(hostId) for every host in parallel, called
 *                directly (no Temporal): DB lookup + credential decryption, SshExecutor connect with
 *                the pinned host key checked, the facts command, parsing, facts saved to the DB
 *   platform (b) through a Temporal dev server (own free port) and a real worker:
 *                `hostRecheck({ concurrency: N })`, the workflow that re-collects the facts of every
 *                online host (listRecheckHosts, N × collectHostFacts, N × recordRecheck), and
 *                `hostOnboardingBatch` with concurrency N: full onboarding of every host from
 *                first contact (key not pinned yet): connect, collect facts, verify, status and
 *                step bookkeeping; more work than facts alone, printed for context
 *   ansible      `ansible all -m setup -f N` (one fork per host) and the same with
 *                `-a gather_subset=hardware`; ansible-core from PyPI in a venv under
 *                ~/.cache/hostflow/ansible-venv (created on first use). Default ssh settings
 *                (ControlPersist, no pipelining); the remote interpreter is given in the inventory
 *                (/usr/bin/python3), which saves Ansible its interpreter discovery.
 *
 * The goal is platform ≤ 0.25 × Ansible's `-m setup` time (medians). Nothing is asserted.
 * Every process started here (sshd, PostgreSQL, Temporal, Ansible and its ssh masters) is stopped
 * at the end, on errors too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Connection } from '@temporalio/client';
import { createTemporalClient } from '../config/temporal.js';
import { NativeConnection } from '@temporalio/worker';
import { initORM, type Db } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { HostCredentialSchema, HostSchema, type HostFacts } from '../db/entities/index.js';
import { createActivities } from '../activities/index.js';
import { SshExecutor } from '../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../activities/winrm/winrm-executor.js';
import { LINUX_FACTS_COMMAND, parseLinuxFacts } from '../activities/remote/facts.js';
import { credentialContext } from '../activities/remote/host-targets.js';
import { createLogger } from '../config/logger.js';
import { activityDuration } from '../config/metrics.js';
import { cacheDir, ensureTemporalCli, startDevServer, TEMPORAL_CLI_VERSION, type DevServer } from '../scripts/temporal-cli.js';
import { bundleWorkflows, createWorker, installWorkerRuntime } from '../worker/create-worker.js';
import type { hostRecheck } from '../workflows/host-recheck.workflow.js';
import type { hostOnboardingBatch } from '../workflows/host-onboarding-batch.workflow.js';
import { createDatabase, startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { adminConnectConfig, execOn, freePort, sshConnect, startSshd, type SshTestHost } from '../test/helpers/sshd.js';
import { cleanUpOnExit } from './exit.js';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WITH_TEMPORAL = process.env.BENCH_TEMPORAL !== '0';
/** BENCH_DISPATCH=default: the dev server's own dispatch settings (the figures before scripts/temporal-cli.ts devServerDynamicConfig). */
const DISPATCH = process.env.BENCH_DISPATCH === 'default' ? 'default' : 'fast';
/** BENCH_FIGURES=batch,ansible (any of raw, direct, recheck, batch, ansible): only those figures. */
const FIGURES = new Set((process.env.BENCH_FIGURES ?? 'raw,direct,recheck,batch,ansible').split(',').map((f) => f.trim()));
/** BENCH_WORKER='{"maxConcurrentWorkflowTaskExecutions":100}': worker tuning options passed to createWorker. */
const WORKER_TUNING = JSON.parse(process.env.BENCH_WORKER ?? '{}') as Record<string, number>;
const GOAL = 0.25;
/** Pinned so that figures from different days compare; an existing venv is used as it is. */
const ANSIBLE_SPEC = 'ansible-core==2.19.14';
const ANSIBLE_TIMEOUT_MS = 300_000;
const REMOTE_PYTHON = '/usr/bin/python3';
const FAKE_BIN = fileURLToPath(new URL('../test/fixtures/bin', import.meta.url));

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// processes: our own children, and whatever mentions our temp dir (Ansible forks, ssh masters)

const children = new Set<ChildProcess>();
let benchDir = '';

/** Pids whose command line contains `needle` (by /proc scan), never this process. */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Kills the processes started from inside `dir` (Ansible and its ControlPersist ssh masters). */
function killMentioning(dir: string): number {
  const pids = dir ? pidsMentioning(dir) : [];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids.length;
}

function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  killMentioning(benchDir);
  if (benchDir) rmSync(benchDir, { recursive: true, force: true });
}

cleanUpOnExit(cleanupSync);

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(new Error(`${cmd}: ${err.message}`));
      resolve({ code: child.exitCode ?? (err ? 1 : 0), out: `${stdout}${stderr}` });
    });
  });
}

async function runOk(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out.trim().slice(-2000)}`);
  return r.out;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

// ---------------------------------------------------------------------------------------
// CPU seconds of process trees (load-independent: what a batch costs, whatever else shares the CPUs)

const CLK_TCK = 100;
/** utime+stime (own) and cutime+cstime (reaped children) of every process, with its parent. */
function procTable(): Map<number, { ppid: number; own: number; reaped: number }> {
  const t = new Map<number, { ppid: number; own: number; reaped: number }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      t.set(Number(e), { ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) / CLK_TCK, reaped: (Number(f[13]) + Number(f[14])) / CLK_TCK });
    } catch {
      // gone
    }
  }
  return t;
}
/** CPU seconds of `root` and its descendants (live ones' own time, reaped ones' through their parents). */
function treeCpu(root: number | undefined, t = procTable()): number {
  if (!root || !t.has(root)) return 0;
  let sum = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    const p = t.get(pid)!;
    sum += p.own + p.reaped;
    for (const [c, q] of t) if (q.ppid === pid) stack.push(c);
  }
  return sum;
}
/** The postmaster listening on `port` (its data directory's postmaster.pid says the port). */
function postmasterPid(port: string): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const d = argv.indexOf('-D');
      if (!argv[0]?.endsWith('postgres') || d < 0) continue;
      const lines = readFileSync(path.join(argv[d + 1]!, 'postmaster.pid'), 'utf8').split('\n');
      if (lines[0] === e && lines[3] === port) return Number(e);
    } catch {
      // not ours, or gone
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// figures

interface RunResult {
  ms: number;
  /** CPU seconds spent during the run: this process (worker + activities), the Temporal dev server, PostgreSQL. */
  cpu?: { bench: number; temporal: number; postgres: number };
  /** Hosts whose facts were collected. */
  ok: number;
  error?: string;
}

interface Figure {
  label: string;
  runs: RunResult[];
  median: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const secs = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '-');

/** One warm-up run (not measured), then RUNS measured runs; prints each as it ends. */
async function measure(label: string, once: () => Promise<RunResult>, opts: { warmup?: boolean } = {}): Promise<Figure> {
  if (opts.warmup !== false) {
    const w = await once();
    console.log(`  ${label}: warm-up ${secs(w.ms)} s, ${w.ok}/${HOSTS} ok${w.error ? ` (${w.error})` : ''}`);
  }
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await once();
    runs.push(r);
    console.log(`  ${label}: run ${i + 1} ${secs(r.ms)} s, ${r.ok}/${HOSTS} ok${r.error ? ` (${r.error})` : ''}`);
  }
  return { label, runs, median: median(runs.map((r) => r.ms)) };
}

const firstError = (rs: PromiseSettledResult<unknown>[]): string | undefined => {
  const f = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return f ? String((f.reason as Error)?.message ?? f.reason).slice(0, 200) : undefined;
};

// ---------------------------------------------------------------------------------------
// Ansible

async function ensureAnsible(): Promise<string> {
  const venv = path.join(cacheDir(), 'ansible-venv');
  const bin = path.join(venv, 'bin', 'ansible');
  if (existsSync(bin)) return bin;
  log(`creating ${venv} and installing ${ANSIBLE_SPEC} from PyPI (first time only)`);
  await rm(venv, { recursive: true, force: true });
  await runOk('python3', ['-m', 'venv', venv]);
  await runOk(path.join(venv, 'bin', 'pip'), ['install', '--disable-pip-version-check', '--quiet', ANSIBLE_SPEC]);
  if (!existsSync(bin)) throw new Error(`pip install ${ANSIBLE_SPEC} finished but ${bin} is missing`);
  return bin;
}

/** Everything Ansible writes locally stays in our temp dir; a fresh ControlPath dir per run = cold. */
function ansibleEnv(runDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_HOME: path.join(benchDir, 'ansible-home'),
    ANSIBLE_LOCAL_TEMP: path.join(runDir, 'tmp'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(runDir, 'cp'),
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_NOCOLOR: '1',
  };
}

interface AnsibleRun extends RunResult {
  output: string;
}

let ansibleRunNo = 0;

async function runAnsible(bin: string, inventory: string, extra: string[]): Promise<AnsibleRun> {
  const n = ansibleRunNo++;
  const runDir = path.join(benchDir, `ansible-${n}`);
  await mkdir(path.join(runDir, 'cp'), { recursive: true });
  const outFile = path.join(runDir, 'out.txt');
  const env = ansibleEnv(runDir);
  const fd = openSync(outFile, 'w');
  const started = performance.now();
  let code: number | null;
  try {
    // stdout to a file, not a pipe: the ssh masters Ansible leaves behind inherit it.
    const child = spawn(bin, ['all', '-i', inventory, '-m', 'setup', '-f', String(HOSTS), ...extra], { cwd: runDir, env, stdio: ['ignore', fd, fd] });
    children.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), ANSIBLE_TIMEOUT_MS);
    code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    clearTimeout(timer);
    children.delete(child);
  } finally {
    closeSync(fd);
  }
  const ms = performance.now() - started;
  killMentioning(runDir); // ControlPersist masters (60 s by default) of this run
  const output = await readFile(outFile, 'utf8');
  const ok = (output.match(/^\S+ \| SUCCESS => \{/gm) ?? []).length;
  const bad = /^(\S+ \| (?:FAILED!?|UNREACHABLE!?).*)$/m.exec(output);
  await rm(runDir, { recursive: true, force: true });
  return { ms, ok, output, ...(ok < HOSTS ? { error: `exit ${code}${bad ? `: ${bad[1]!.slice(0, 160)}` : ''}` } : {}) };
}

/** Number of facts and JSON size of the first host's answer. */
function ansibleSample(output: string): string {
  const m = /^(\S+) \| SUCCESS => (\{[\s\S]*?\n\})$/m.exec(output);
  if (!m) return 'no successful answer to inspect';
  try {
    const j = JSON.parse(m[2]!) as { ansible_facts?: Record<string, unknown> };
    return `${Object.keys(j.ansible_facts ?? {}).length} top-level facts, ${(m[2]!.length / 1024).toFixed(0)} KiB of JSON per host`;
  } catch {
    return `${(m[2]!.length / 1024).toFixed(0)} KiB of output per host`;
  }
}

// ---------------------------------------------------------------------------------------

function describeFacts(f: HostFacts | null | undefined): string {
  if (!f) return 'none';
  const gpus = f.gpus?.length ? `${f.gpus.length}× ${f.gpus[0]!.model}` : 'no GPU';
  return `${f.cpu?.cores ?? '?'} CPUs (${f.cpu?.model ?? '?'}), ${((f.memoryBytes ?? 0) / 1024 ** 3).toFixed(1)} GiB, ${f.disks?.length ?? 0} disks, ${gpus}${f.cuda ? `, CUDA ${f.cuda}` : ''}, ${f.os?.name ?? '?'} ${f.os?.kernel ?? ''}`.trim();
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(HOSTS) || HOSTS < 1 || HOSTS > 50) throw new Error(`BENCH_HOSTS must be 1..50 (the batch workflow caps concurrency at 50), got ${process.env.BENCH_HOSTS}`);
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_RUNS must be an integer >= 1, got ${process.env.BENCH_RUNS}`);
  const benchStarted = performance.now();
  benchDir = await mkdtemp(path.join(os.tmpdir(), 'hostflow-bench-facts-'));

  const hosts: SshTestHost[] = [];
  let cluster: TestPostgres | undefined;
  let adminUrl = '';
  const dbName = `hostflow_bench_${randomBytes(4).toString('hex')}`;
  let db: Db | undefined;
  let temporal: DevServer | undefined;
  let client: Connection | undefined;
  let nativeConnection: NativeConnection | undefined;
  let stopWorker: (() => Promise<void>) | undefined;
  const executors: Array<SshExecutor | WinRmExecutor> = [];

  try {
    // --- setup (not measured) ------------------------------------------------------------
    const fakeGpu = existsSync(path.join(FAKE_BIN, 'nvidia-smi'));
    const extraConfig = fakeGpu ? `SetEnv PATH=${FAKE_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` : '';
    let t = performance.now();
    // allSettled: nothing may still be starting when the finally block cleans up.
    const setupResults = await Promise.allSettled([
      FIGURES.has('ansible') ? ensureAnsible() : Promise.resolve(''),
      (async () => {
        cluster = process.env.BENCH_DATABASE_URL ? undefined : await startPostgres();
        adminUrl = process.env.BENCH_DATABASE_URL ?? cluster!.url;
        db = await initORM({ databaseUrl: await createDatabase(adminUrl, dbName) });
      })(),
      pool(Array.from({ length: HOSTS }), 8, async () => {
        hosts.push(await startSshd({ extraConfig }));
      }),
    ]);
    const setupFailure = setupResults.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (setupFailure) throw setupFailure.reason;
    const ansible = (setupResults[0] as PromiseFulfilledResult<string>).value;
    hosts.sort((a, b) => a.port - b.port);
    log(`${HOSTS} sshd hosts, PostgreSQL and Ansible ready in ${secs(performance.now() - t)} s`);

    const logger = createLogger({ level: 'silent' });
    const vault = new Vault(generateKeyring('bench'));
    const payloadKeys = generateKeyring('bench-payload');
    const em = db!.em.fork();
    const ids: string[] = [];
    hosts.forEach((h, i) => {
      const host = em.create(HostSchema, {
        slug: `bench-${String(i).padStart(2, '0')}`,
        name: `bench host ${i}`,
        address: h.host,
        port: h.port,
        os: 'linux',
        username: h.adminUser,
        status: 'online',
      });
      const { ciphertext, keyId } = vault.encrypt(h.adminPrivateKey, credentialContext(host.id, 'private-key'));
      em.create(HostCredentialSchema, { host, kind: 'private-key', ciphertext, keyId });
      ids.push(host.id);
    });
    await em.flush();

    // Ansible inventory: the same hosts, users and keys.
    const keyDir = path.join(benchDir, 'keys');
    await mkdir(keyDir, { mode: 0o700 });
    const inventory = path.join(benchDir, 'inventory.ini');
    const lines = ['[bench]'];
    for (const [i, h] of hosts.entries()) {
      const key = path.join(keyDir, `h${i}`);
      await writeFile(key, h.adminPrivateKey, { mode: 0o600 });
      lines.push(`h${String(i).padStart(2, '0')} ansible_host=${h.host} ansible_port=${h.port} ansible_user=${h.adminUser} ansible_ssh_private_key_file=${key}`);
    }
    lines.push('', '[all:vars]', `ansible_python_interpreter=${REMOTE_PYTHON}`, `ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null'`, '');
    await writeFile(inventory, lines.join('\n'));

    // The platform's executors. A new SshExecutor per run: no pooled connection survives a run,
    // and no idle timer of an earlier run can close a connection of a later one.
    let ssh = new SshExecutor({ em: db!.em, vault, logger });
    executors.push(ssh);
    const freshSsh = async () => {
      await ssh.close();
      ssh = new SshExecutor({ em: db!.em, vault, logger });
      executors.push(ssh);
      await sleep(100); // let the previous run's connections close
    };
    const sshFacade: Pick<SshExecutor, 'exec' | 'evict' | 'close' | 'verifyLogin'> = {
      exec: (...a) => ssh.exec(...a),
      evict: (id) => ssh.evict(id),
      close: () => ssh.close(),
      verifyLogin: (...a) => ssh.verifyLogin(...a),
    };
    const winrm = new WinRmExecutor({ em: db!.em, vault, logger });
    executors.push(winrm);
    const activities = createActivities({ em: db!.em, vault, logger, ssh: sshFacade, winrm, mailer: null, mailFrom: 'Hostflow <bench@localhost>', baseDomain: 'hosts.bench' });

    const [pgVersion, ansibleVersion, sshVersion] = await Promise.all([
      db!.em.fork().getConnection().execute<Array<{ v: string }>>(`select current_setting('server_version') as v`).then((r) => r[0]?.v ?? '?'),
      (ansible ? run(ansible, ['--version'], { env: ansibleEnv(benchDir) }) : Promise.resolve({ out: '' })).then((r) => /ansible \[core ([^\]]+)\]/.exec(r.out)?.[1] ?? '?'),
      run('ssh', ['-V']).then((r) => r.out.trim().split(',')[0] ?? '?'),
    ]);

    console.log(`bench/onboard-facts: facts of ${HOSTS} loopback hosts (one sshd each, key auth${fakeGpu ? ', fake nvidia-smi' : ''}); per figure 1 warm-up (none for the hardware subset, which follows -m setup) + ${RUNS} measured run(s), every run from cold connections`);
    console.log(`  load average before the runs: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min; anything else running shares the CPUs)`);
    console.log(`  node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), PostgreSQL ${pgVersion}${cluster ? ' (throwaway local cluster, fsync off)' : ''}, ansible-core ${ansibleVersion}, ${sshVersion}${WITH_TEMPORAL ? `, Temporal CLI ${TEMPORAL_CLI_VERSION} dev server` : ''}`);
    console.log('');

    const figures: Figure[] = [];

    // --- floors: raw ssh2, no DB ----------------------------------------------------------
    const rawFanOut = (command: string) => async (): Promise<RunResult> => {
      const started = performance.now();
      const rs = await Promise.allSettled(
        hosts.map(async (h) => {
          const c = await sshConnect(adminConnectConfig(h));
          try {
            const r = await execOn(c, command);
            if (r.code !== 0) throw new Error(`${command.slice(0, 20)} exited ${r.code}`);
            return command === LINUX_FACTS_COMMAND ? parseLinuxFacts(r.stdout) : r;
          } finally {
            c.end();
          }
        }),
      );
      const ms = performance.now() - started;
      await sleep(100);
      return { ms, ok: rs.filter((r) => r.status === 'fulfilled').length, error: firstError(rs) };
    };
    let floor: Figure | undefined;
    if (FIGURES.has('raw')) {
      figures.push(await measure('raw ssh2 connect+exec `true`', rawFanOut('true')));
      floor = await measure('raw ssh2 connect+exec facts (floor)', rawFanOut(LINUX_FACTS_COMMAND));
      figures.push(floor);
    }

    // --- platform (a): the activity, called directly -------------------------------------
    const direct = !FIGURES.has('direct') ? undefined : await measure('platform collectHostFacts, direct', async () => {
      await freshSsh();
      const started = performance.now();
      const rs = await Promise.allSettled(ids.map((id) => activities.collectHostFacts(id)));
      const ms = performance.now() - started;
      const ok = rs.filter((r) => r.status === 'fulfilled' && r.value.cpuCores && r.value.memoryBytes).length;
      return { ms, ok, error: firstError(rs) };
    });
    if (direct) figures.push(direct);
    const stored = await db!.em.fork().find(HostSchema, { id: { $in: ids } });
    const sampleFacts = stored.find((h) => h.id === ids[0])?.facts;
    const withGpus = stored.filter((h) => (h.facts?.gpus?.length ?? 0) > 0).length;

    // --- platform (b): through Temporal --------------------------------------------------
    if (WITH_TEMPORAL && (FIGURES.has('recheck') || FIGURES.has('batch'))) {
      t = performance.now();
      const [cli, bundle] = await Promise.all([ensureTemporalCli({ log }), bundleWorkflows()]);
      temporal = await startDevServer({ cli, port: await freePort(), uiPort: null, dispatch: DISPATCH });
      children.add(temporal.process);
      installWorkerRuntime('WARN');
      nativeConnection = await NativeConnection.connect({ address: temporal.address });
      const taskQueue = `bench-facts-${randomUUID()}`;
      const worker = await createWorker({ connection: nativeConnection, namespace: 'default', taskQueue, activities, workflowBundle: bundle, payloadKeys, shutdownGraceTime: '5s', ...WORKER_TUNING });
      const running = worker.run();
      stopWorker = async () => {
        worker.shutdown();
        await running;
      };
      client = await Connection.connect({ address: temporal.address });
      const pgPid = postmasterPid(new URL(adminUrl).port || '5432');
      const cpuNow = () => {
        const t = procTable();
        const u = process.cpuUsage();
        return { bench: (u.user + u.system) / 1e6, temporal: treeCpu(temporal?.process.pid, t), postgres: treeCpu(pgPid, t) };
      };
      const temporalClient = createTemporalClient({ connection: client, payloadKeys });
      log(`Temporal dev server on ${temporal.address} and worker ready in ${secs(performance.now() - t)} s`);

      if (FIGURES.has('recheck')) figures.push(
        await measure('platform hostRecheck wf, Temporal', async () => {
          await freshSsh();
          const started = performance.now();
          try {
            const r = await temporalClient.workflow.execute<typeof hostRecheck>('hostRecheck', {
              workflowId: `bench-recheck/${randomUUID()}`,
              taskQueue,
              args: [{ concurrency: HOSTS, offlineAfter: 3 }],
            });
            return { ms: performance.now() - started, ok: r.checked - r.failed, ...(r.checked !== HOSTS ? { error: `checked ${r.checked}` } : {}) };
          } catch (err) {
            return { ms: performance.now() - started, ok: 0, error: (err as Error).message };
          }
        }),
      );

      if (FIGURES.has('batch')) figures.push(
        await measure('platform onboarding batch, Temporal', async () => {
          // First contact again: pending, no host key pinned.
          await db!.em.fork().nativeUpdate(HostSchema, { id: { $in: ids } }, { status: 'pending', hostKeyFingerprint: null, hostKeyPinnedAt: null });
          await freshSsh();
          const cpu0 = cpuNow();
          const started = performance.now();
          try {
            const r = await temporalClient.workflow.execute<typeof hostOnboardingBatch>('hostOnboardingBatch', {
              workflowId: `host-onboarding-batch/${randomUUID()}`,
              taskQueue,
              args: [{ concurrency: HOSTS, hosts: ids.map((hostId) => ({ hostId, templateId: null, remoteAccess: null })) }],
            });
            const failed = r.failed[0];
            const ms = performance.now() - started;
            const cpu1 = cpuNow();
            const cpu = { bench: cpu1.bench - cpu0.bench, temporal: cpu1.temporal - cpu0.temporal, postgres: cpu1.postgres - cpu0.postgres };
            log(`onboarding batch CPU seconds: bench process (worker, activities) ${cpu.bench.toFixed(2)}, Temporal dev server ${cpu.temporal.toFixed(2)}, PostgreSQL ${cpu.postgres.toFixed(2)}`);
            return { ms, ok: r.online.length, cpu, ...(failed ? { error: `${failed.step}: ${failed.error}` } : {}) };
          } catch (err) {
            return { ms: performance.now() - started, ok: 0, error: (err as Error).message };
          }
        }),
      );
    }

    // What one host's onboarding costs in Temporal: events, workflow tasks, dispatched activity
    // tasks and local activities (markers) of one child's history.
    let historyCost = '';
    if (WITH_TEMPORAL && client && FIGURES.has('batch')) {
      const c = createTemporalClient({ connection: client, payloadKeys });
      const events = (await c.workflow.getHandle(`host-onboarding/${ids[0]}`).fetchHistory()).events ?? [];
      const count = (pick: (e: (typeof events)[number]) => unknown) => events.filter((e) => pick(e) != null).length;
      // Where a host's time goes: each event's offset from the workflow's start.
      const t0 = Number(events[0]?.eventTime?.seconds ?? 0) * 1000 + (events[0]?.eventTime?.nanos ?? 0) / 1e6;
      const at = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6 - t0;
      const timeline = events.map((e) => {
        const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? '?';
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '';
        return `${at(e).toFixed(0)}ms ${kind.replace('EventAttributes', '')}${name ? `(${name})` : ''}`;
      });
      console.log(`  timeline of host-onboarding/${ids[0]} (last run): ${timeline.join(', ')}`);
      // Activity bodies (local and dispatched) as the worker's interceptor timed them, over every run.
      const metric = await activityDuration.get();
      const byType = new Map<string, { sum: number; count: number }>();
      for (const v of metric.values) {
        const type = String(v.labels.activity_type);
        const e = byType.get(type) ?? { sum: 0, count: 0 };
        if (v.metricName?.endsWith('_sum')) e.sum += v.value;
        if (v.metricName?.endsWith('_count')) e.count += v.value;
        byType.set(type, e);
      }
      console.log(`  activity bodies over all batch runs (count, mean ms): ${[...byType].map(([k, v]) => `${k} ${v.count} × ${((v.sum / Math.max(1, v.count)) * 1000).toFixed(1)}`).join(', ')}`);
      historyCost = `one host's onboarding history (host-onboarding/${ids[0]}): ${events.length} events, ${count((e) => e.workflowTaskStartedEventAttributes)} workflow tasks, ${count((e) => e.activityTaskScheduledEventAttributes)} dispatched activity tasks, ${count((e) => e.markerRecordedEventAttributes)} markers (local activities + patch markers); dev server dispatch ${DISPATCH}`;
    }

    // --- Ansible ---------------------------------------------------------------------------
    let sample = '';
    let setup: Figure | undefined;
    let hardware: Figure | undefined;
    if (FIGURES.has('ansible')) {
      setup = await measure('ansible -m setup', async () => {
        const r = await runAnsible(ansible, inventory, []);
        sample ||= r.ok ? ansibleSample(r.output) : '';
        return r;
      });
      figures.push(setup);
      hardware = await measure('ansible -m setup gather_subset=hw', () => runAnsible(ansible, inventory, ['-a', 'gather_subset=hardware']), { warmup: false });
      figures.push(hardware);
    }

    // --- report ----------------------------------------------------------------------------
    console.log('');
    if (direct) console.log(`  platform facts of bench-00: ${describeFacts(sampleFacts)}; ${withGpus}/${HOSTS} hosts with GPUs; ${JSON.stringify(sampleFacts ?? {}).length} bytes stored per host`);
    if (setup) console.log(`  ansible setup facts: ${sample || '?'}`);
    console.log('');
    const runCols = Array.from({ length: RUNS }, (_, i) => `run ${i + 1}`.padStart(8));
    console.log(`${'wall time for all hosts, s'.padEnd(38)}${runCols.join('')}${'median'.padStart(8)}${'ok'.padStart(8)}`);
    for (const f of figures) {
      const okMin = Math.min(...f.runs.map((r) => r.ok));
      console.log(`${f.label.padEnd(38)}${f.runs.map((r) => secs(r.ms).padStart(8)).join('')}${secs(f.median).padStart(8)}${`${okMin}/${HOSTS}`.padStart(8)}`);
    }
    console.log('');
    const ratio = (a: Figure, b: Figure) => `${(a.median / b.median).toFixed(2)}x`;
    const platformFigures = figures.filter((f) => f.label.startsWith('platform') || f.label.startsWith('raw'));
    if (setup && hardware) {
      console.log(`${'median ratio'.padEnd(38)}${'/ setup'.padStart(10)}${'/ hw'.padStart(10)}`);
      for (const f of platformFigures) console.log(`${f.label.padEnd(38)}${ratio(f, setup).padStart(10)}${ratio(f, hardware).padStart(10)}`);
      console.log('');
    }
    if (direct && setup) {
      const verdict = direct.median / setup.median <= GOAL ? 'met' : 'NOT met';
      console.log(`goal: platform (direct) <= ${GOAL}x ansible -m setup: ${ratio(direct, setup)}, ${verdict}${floor ? `; platform overhead over the raw ssh2 floor: +${secs(direct.median - floor.median)} s` : ''}`);
    }
    const batch = figures.find((f) => f.label.startsWith('platform onboarding batch'));
    const cpuRuns = batch?.runs.filter((r) => r.cpu) ?? [];
    if (cpuRuns.length) {
      const med = (k: 'bench' | 'temporal' | 'postgres') => median(cpuRuns.map((r) => r.cpu![k])).toFixed(2);
      console.log(`onboarding batch CPU seconds per run (median): bench process (worker + activities) ${med('bench')}, Temporal dev server ${med('temporal')}, PostgreSQL ${med('postgres')}; per run: ${cpuRuns.map((r) => `${r.cpu!.bench.toFixed(1)}/${r.cpu!.temporal.toFixed(1)}/${r.cpu!.postgres.toFixed(1)}`).join(', ')}`);
    }
    if (batch) console.log(`goal: onboarding batch of ${HOSTS} hosts <= 2 s: ${secs(batch.median)} s median, ${batch.median <= 2000 ? 'met' : 'NOT met'} (load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; worker options ${JSON.stringify(WORKER_TUNING)})`);
    if (historyCost) console.log(historyCost);
    console.log(`total bench time ${secs(performance.now() - benchStarted)} s (setup included)`);
  } finally {
    await stopWorker?.().catch((err: Error) => log(`worker shutdown: ${err.message}`));
    await nativeConnection?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await temporal?.stop();
    for (const e of executors) await e.close();
    await db?.close();
    await sleep(200); // let the pool's sockets close
    if (adminUrl && db) await dropDatabase(adminUrl, dbName).catch((err: Error) => log(`could not drop ${dbName}: ${err.message}`));
    await cluster?.stop();
    await pool(hosts, 10, (h) => h.stop());
    killMentioning(benchDir);
    await rm(benchDir, { recursive: true, force: true });
  }
}

await main();
