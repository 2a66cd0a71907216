/**
 * A real PostgreSQL server for tests.
 *
 * `startPostgres()` returns `TEST_DATABASE_URL` when set (stop() is then a no-op). Otherwise it
 * creates a throwaway cluster from Debian's server binaries (`/usr/lib/postgresql/<highest>/bin`)
 * in a temp dir, on 127.0.0.1:<free port>, with fsync and full_page_writes off for speed, and
 * creates the database `hostflow_test`. synchronous_commit stays on: `pause()` crashes the server
 * (`-m immediate`), and with asynchronous commit a crash loses transactions the server already
 * acknowledged (up to ~3 × wal_writer_delay of them). Those are not "the same data" a PostgreSQL
 * with default durability keeps; without fsync a commit still reaches the kernel's page cache,
 * which a process crash does not lose.
 *
 * PostgreSQL refuses to run as root: as root, initdb/pg_ctl run as the `postgres` OS user via
 * `runuser -u postgres --` and the temp dir is chowned to it. As any other user they run directly.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/hostflow_test (or TEST_DATABASE_URL). */
  url: string;
  /** `pg_ctl stop -m fast` and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Fault injection: stops the server abruptly (`-m immediate`), keeping its data. Not for TEST_DATABASE_URL. */
  pause(): Promise<void>;
  /** Starts a paused server again on the same port and data directory. */
  resume(): Promise<void>;
}

const MAX_CONNECTIONS = 300; // parallel test files each open their own ORM pools

function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(path.join(base, v, 'bin', 'initdb')) && existsSync(path.join(base, v, 'bin', 'pg_ctl')))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error(`PostgreSQL server binaries not found under ${base}/*/bin: install postgresql (apt-get install postgresql)`);
  return path.join(base, versions[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = () => process.getuid?.() === 0;

/** argv that runs `cmd` as the postgres OS user when we are root. */
function asPostgresArgv(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function runAsPostgres(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const [file, argv] = asPostgresArgv(cmd, args);
  return new Promise((resolve, reject) => {
    const child = execFile(file, argv, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`${file}: ${err.message}`));
        return;
      }
      resolve({ code: child.exitCode ?? (err ? 1 : 0), out: `${stdout}${stderr}`.trim() });
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

// ---------------------------------------------------------------------------------------
// safety net: a cluster still running when the process exits is stopped (immediate) and removed

interface Cluster {
  bin: string;
  dir: string;
  data: string;
}
const liveClusters = new Set<Cluster>();
let safetyNetInstalled = false;

function cleanupSync(): void {
  for (const c of liveClusters) {
    const [file, argv] = asPostgresArgv(path.join(c.bin, 'pg_ctl'), ['-D', c.data, '-m', 'immediate', '-w', '-t', '10', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 15_000 });
    rmSync(c.dir, { recursive: true, force: true });
  }
  liveClusters.clear();
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      cleanupSync();
      // Only act as the terminator when nobody else handles the signal: restore default and re-raise.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

// ---------------------------------------------------------------------------------------

export async function startPostgres(): Promise<TestPostgres> {
  const fromEnv = process.env.TEST_DATABASE_URL;
  if (fromEnv) {
    const refuse = async () => {
      throw new Error('pause/resume need a cluster of the test\'s own (TEST_DATABASE_URL is shared)');
    };
    return { url: fromEnv, stop: async () => undefined, pause: refuse, resume: refuse };
  }

  const bin = pgBinDir();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostflow-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  const cluster: Cluster = { bin, dir, data };
  installSafetyNet();

  let started = false;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (started) {
        const r = await runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
        if (r.code !== 0 && existsSync(path.join(data, 'postmaster.pid'))) throw new Error(`pg_ctl stop failed (${r.code}): ${r.out}`);
      }
    } finally {
      liveClusters.delete(cluster);
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    if (isRoot()) {
      const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      const gr = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
      if (pw.status !== 0 || gr.status !== 0) throw new Error('running as root but the `postgres` OS user is missing: install postgresql (apt-get install postgresql)');
      await chown(dir, Number(pw.stdout.trim()), Number(gr.stdout.trim()));
    }
    liveClusters.add(cluster);

    const init = await runAsPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    if (init.code !== 0) throw new Error(`initdb failed (${init.code}): ${init.out}`);

    // Free-port race with other processes: retry on a new port when the bind fails.
    let port = 0;
    let serverOpts = '';
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      serverOpts = [
        `-c listen_addresses=127.0.0.1`,
        `-p ${port}`,
        `-k ${dir}`,
        `-c fsync=off`,
        `-c full_page_writes=off`,
        `-c max_connections=${MAX_CONNECTIONS}`,
      ].join(' ');
      // -w: pg_ctl waits until the server accepts connections (its own pg_isready-style probe).
      const r = await runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', serverOpts, '-w', '-t', '30', 'start']);
      if (r.code === 0) break;
      const log = tail(logFile, 50);
      if (attempt < 4 && /could not bind|address already in use/i.test(log)) {
        await rm(logFile, { force: true });
        continue;
      }
      throw new Error(`PostgreSQL did not start (pg_ctl exit ${r.code}): ${r.out}\n--- ${logFile} (tail) ---\n${log}`);
    }
    started = true;

    const url = await createDatabase(`postgres://postgres@127.0.0.1:${port}/postgres`, 'hostflow_test');
    const pause = async () => {
      const r = await runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      if (r.code !== 0) throw new Error(`pg_ctl stop failed (${r.code}): ${r.out}`);
    };
    const resume = async () => {
      const r = await runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', serverOpts, '-w', '-t', '60', 'start']);
      if (r.code !== 0) throw new Error(`PostgreSQL did not start again (pg_ctl exit ${r.code}): ${r.out}\n${tail(logFile, 30)}`);
    };
    return { url, stop, pause, resume };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/**
 * Creates a fresh, empty database on the server of `adminUrl` (any database on that server;
 * the user needs CREATEDB) and returns its URL. Fails if it already exists, unless
 * `opts.replace` (then it is dropped first, disconnecting its sessions).
 */
export async function createDatabase(adminUrl: string, name: string, opts: { replace?: boolean } = {}): Promise<string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new Error(`createDatabase: invalid database name ${JSON.stringify(name)}`);
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    if (opts.replace) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
