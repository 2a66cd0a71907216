// The Temporal CLI (dev server + Web UI). Release binaries cannot be downloaded here, so it is
// built from its Go module with `go install` into a cache outside the repository, once.
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, fstatSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';

/** v1.5.1 is pinned: later releases carry a `replace` directive that `go install pkg@version` refuses. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

export function cacheDir(override?: string): string {
  return override ?? process.env.HOSTFLOW_CACHE_DIR ?? join(homedir(), '.cache', 'hostflow');
}

export function temporalCliPath(opts: { cliPath?: string; cacheDir?: string } = {}): string {
  return opts.cliPath ?? process.env.TEMPORAL_CLI_PATH ?? join(cacheDir(opts.cacheDir), 'temporal-cli', TEMPORAL_CLI_VERSION, 'temporal');
}

/** Returns the path of a usable `temporal` binary, building it with `go install` if absent. */
export async function ensureTemporalCli(opts: { cliPath?: string; cacheDir?: string; log?: (line: string) => void } = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const path = temporalCliPath(opts);
  if (existsSync(path)) return path;
  if (opts.cliPath ?? process.env.TEMPORAL_CLI_PATH) {
    throw new Error(`TEMPORAL_CLI_PATH points at ${path}, which does not exist`);
  }
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'Building the Temporal CLI needs Go (>= 1.23), which is not on PATH. Install it (apt-get install golang-go, or from go.dev), ' +
        'or set TEMPORAL_CLI_PATH to an existing `temporal` binary, or TEMPORAL_ADDRESS to an existing cluster.',
    );
  }
  const gobin = join(path, '..');
  mkdirSync(gobin, { recursive: true });
  log(`[temporal-cli] building ${MODULE} into ${gobin} (first time only; takes a few minutes)`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['install', '-v', '-trimpath', MODULE], {
      env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let packages = 0;
    let lastErr = '';
    const tick = setInterval(() => {
      log(`[temporal-cli] still building: ${packages} packages compiled, ${Math.round((Date.now() - started) / 1000)} s elapsed`);
    }, 15_000);
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        if (line.startsWith('go: downloading')) continue;
        packages++;
        lastErr = (lastErr + '\n' + line).slice(-4000);
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(tick);
      if (code === 0) resolve();
      else reject(new Error(`go install ${MODULE} failed (exit ${code}):${lastErr}\nIf a package is missing, install Go >= 1.23 and retry.`));
    });
  });
  if (!existsSync(path)) throw new Error(`go install finished but ${path} is missing`);
  log(`[temporal-cli] built in ${Math.round((Date.now() - started) / 1000)} s`);
  return path;
}

export interface DevServer {
  address: string;
  uiPort: number | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export const SEARCH_ATTRIBUTE_FLAGS = ['HostId', 'HostStatus', 'CustomerId', 'Requester', 'LifecycleStatus'].flatMap((n) => ['--search-attribute', `${n}=Keyword`]);

/**
 * Dynamic config of the dev server (`key=value`, as `--dynamic-config-value` takes it). The same keys
 * go into a self-hosted cluster's dynamic config file (README "Performance": Temporal round trip).
 *
 * - One task-queue partition: a single local worker polls one partition, so no task waits in
 *   another partition for the forwarder.
 * - `history.transferProcessorMaxPollRPS`: the history service loads new transfer tasks (workflow
 *   task and activity task dispatches to matching) at most this often per shard, default 20/s. The
 *   dev server has one history shard, so a task created less than 50 ms after the previous load
 *   waits for the next one: that was the ~40 ms of every "scheduled → started" hop
 *   (bench/remote-exec figure 2). 1000/s caps the wait at 1 ms; the reader still polls only when
 *   it is told of new tasks, so an idle server does no more reads.
 * - Eager activity execution (off by default in the server): a workflow task completion that
 *   schedules activities gets them back in its response when the same worker has free slots, so
 *   an activity needs no dispatch through matching at all. Eager workflow start is on by default;
 *   it is listed so that the intent is written down (`requestEagerStart`, config/temporal.ts).
 *
 * `dispatch: 'default'` leaves the server's defaults (partitions aside): the "before" figures.
 */
export function devServerDynamicConfig(dispatch: 'fast' | 'default' = 'fast'): string[] {
  const partitions = ['matching.numTaskqueueReadPartitions=1', 'matching.numTaskqueueWritePartitions=1'];
  if (dispatch === 'default') return partitions;
  return [...partitions, 'history.transferProcessorMaxPollRPS=1000', 'system.enableActivityEagerExecution=true', 'system.enableEagerWorkflowStart=true'];
}

/** The last `max` bytes of a file ('' if it cannot be read). */
function tailOf(file: string, max: number): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, max);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString();
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Starts `temporal server start-dev` and waits until its frontend answers. */
export async function startDevServer(o: {
  cli: string;
  port: number;
  uiPort?: number | null;
  dbFile?: string;
  namespace?: string;
  /** The Web UI's remote codec endpoint (the API's /api/v1/temporal/codec): the UI decodes payloads through it. */
  uiCodecEndpoint?: string;
  /**
   * Where the server's stdout/stderr go (appended). Without it they are piped to this process, and
   * a server that outlives this process (`detached`) dies of SIGPIPE at its next log line: Go exits
   * on a broken stdout/stderr pipe. `npm start` passes DATA_DIR/temporal-dev.log.
   */
  logFile?: string;
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  detached?: boolean;
  /** 'default': the server's dispatch defaults (benches' "before" figures); 'fast' (default): devServerDynamicConfig. */
  dispatch?: 'fast' | 'default';
}): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port), '--log-level', 'warn', ...SEARCH_ATTRIBUTE_FLAGS];
  if (o.uiPort) args.push('--ui-port', String(o.uiPort));
  if (o.uiPort && o.uiCodecEndpoint) args.push('--ui-codec-endpoint', o.uiCodecEndpoint);
  else args.push('--headless');
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  if (o.namespace && o.namespace !== 'default') args.push('--namespace', o.namespace);
  for (const kv of devServerDynamicConfig(o.dispatch ?? 'fast')) args.push('--dynamic-config-value', kv);
  // Own process group: Ctrl-C reaches us first, and the server stops last, after the worker drained.
  const logFd = o.logFile ? openSync(o.logFile, 'a', 0o600) : undefined;
  const child = spawn(o.cli, args, { stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'], detached: o.detached ?? false });
  if (logFd !== undefined) closeSync(logFd); // the child holds its own copy
  let piped = '';
  const capture = (d: Buffer) => {
    piped = (piped + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', capture);
  child.stderr?.on('data', capture);
  const output = () => (o.logFile ? tailOf(o.logFile, 8000) : piped);
  let exited: number | null | undefined;
  child.on('exit', (code, signal) => {
    exited = code;
    o.onExit?.(code, signal);
  });
  const address = `127.0.0.1:${o.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`temporal server start-dev exited with ${exited}:\n${output()}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: '1s' });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not become ready on ${address} within 60 s:\n${output()}`);
      }
      await delay(250);
    }
  }
  return {
    address,
    uiPort: o.uiPort ?? null,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited !== undefined) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

// `tsx scripts/temporal-cli.ts build` (npm run temporal:build): build/print the CLI path.
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'build') {
  ensureTemporalCli().then(
    (p) => console.log(p),
    (err) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
