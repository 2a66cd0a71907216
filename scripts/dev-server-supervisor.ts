// The embedded Temporal dev server as `npm start` runs it: recorded in a pidfile under DATA_DIR
// (its pid and exact command line, and the pid and command line of the `npm start` that owns it),
// restarted on the same DB file when it dies, and stopped last on shutdown.
//
// The dev server runs in its own process group (Ctrl-C reaches `npm start` first, so it can stop
// last), which also means a SIGKILLed `npm start` leaves it running. The next start recognises it
// from the pidfile plus /proc/<pid>/cmdline and stops it; a port held by anything else is refused.
import { readFileSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { startDevServer, type DevServer } from './temporal-cli.js';

export interface DevServerPidfile {
  pid: number;
  argv: string[];
  owner: { pid: number; argv: string[] };
  startedAt: string;
}

/** The command line of a live process, or null if there is none (or it is a zombie). */
export function processCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return null; // zombie or kernel thread
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

const sameArgv = (a: string[] | null, b: string[]) => !!a && a.length === b.length && a.every((x, i) => x === b[i]);

export function readPidfile(path: string): DevServerPidfile | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as DevServerPidfile;
    if (typeof v.pid !== 'number' || !Array.isArray(v.argv) || typeof v.owner?.pid !== 'number') return null;
    return v;
  } catch {
    return null;
  }
}

function writePidfile(path: string, v: DevServerPidfile) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(v, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

async function waitGone(pid: number, argv: string[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!sameArgv(processCmdline(pid), argv)) return true;
    await delay(100);
  }
  return !sameArgv(processCmdline(pid), argv);
}

/**
 * Before starting: a dev server that a previous, killed `npm start` with this DATA_DIR left
 * running is stopped (SIGTERM, then SIGKILL after 10 s). If the `npm start` that owns it is still
 * alive, this refuses: two platforms must not share one DATA_DIR.
 */
export async function stopLeftoverDevServer(pidfile: string, log: (msg: string) => void): Promise<boolean> {
  const rec = readPidfile(pidfile);
  if (!rec) return false;
  if (rec.owner.pid !== process.pid && sameArgv(processCmdline(rec.owner.pid), rec.owner.argv)) {
    throw new Error(`another \`npm start\` (pid ${rec.owner.pid}) is running with this DATA_DIR (${pidfile}); stop it first`);
  }
  if (sameArgv(processCmdline(rec.pid), rec.argv)) {
    log(`stopping the Temporal dev server (pid ${rec.pid}) that a previous \`npm start\` (pid ${rec.owner.pid}) left running`);
    try {
      process.kill(rec.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    if (!(await waitGone(rec.pid, rec.argv, 10_000))) {
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      if (!(await waitGone(rec.pid, rec.argv, 5_000))) throw new Error(`the leftover Temporal dev server (pid ${rec.pid}) did not stop`);
    }
    rmSync(pidfile, { force: true });
    return true;
  }
  rmSync(pidfile, { force: true });
  return false;
}

export interface SupervisedDevServer {
  readonly address: string;
  /** The dev server process now running (changes on restart). */
  current(): DevServer;
  restarts(): number;
  stop(): Promise<void>;
}

/**
 * Starts the dev server and keeps it running: when it exits unexpectedly it is started again
 * on the same DB file (state survives), at most `maxRestarts` times within `windowMs`, with a log
 * line for each. Past that, `onGiveUp` is called. Clients reconnect to the same address.
 */
export async function superviseDevServer(o: {
  start: Omit<Parameters<typeof startDevServer>[0], 'onExit' | 'detached'>;
  pidfile: string;
  log: { info(msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  maxRestarts?: number;
  windowMs?: number;
  onGiveUp: (err: Error) => void;
}): Promise<SupervisedDevServer> {
  const maxRestarts = o.maxRestarts ?? 5;
  const windowMs = o.windowMs ?? 10 * 60_000;
  const ownerArgv = processCmdline(process.pid) ?? process.argv;
  let stopping = false;
  let restartTimes: number[] = [];
  let total = 0;
  let restarting: Promise<void> | null = null;
  let server: DevServer;

  const launch = async () => {
    const ref: { s?: DevServer } = {};
    const s = (ref.s = await startDevServer({ ...o.start, detached: true, onExit: (code, signal) => onExit(ref.s, code, signal) }));
    const argv = processCmdline(s.process.pid!);
    if (argv) writePidfile(o.pidfile, { pid: s.process.pid!, argv, owner: { pid: process.pid, argv: ownerArgv }, startedAt: new Date().toISOString() });
    return s;
  };

  const onExit = (s: DevServer | undefined, code: number | null, signal: NodeJS.Signals | null) => {
    if (stopping || !s || s !== server || restarting) return;
    restarting = restart(code, signal).finally(() => {
      restarting = null;
    });
  };

  const restart = async (code: number | null, signal: NodeJS.Signals | null) => {
    for (;;) {
      const now = Date.now();
      restartTimes = restartTimes.filter((t) => now - t < windowMs);
      if (restartTimes.length >= maxRestarts) {
        o.onGiveUp(new Error(`Temporal dev server exited (${signal ?? `code ${code}`}) ${maxRestarts} times within ${Math.round(windowMs / 60_000)} min; giving up`));
        return;
      }
      restartTimes.push(now);
      total++;
      o.log.warn({ code, signal, attempt: restartTimes.length, of: maxRestarts, dbFile: o.start.dbFile }, 'Temporal dev server exited unexpectedly; restarting it on the same DB file');
      await delay(Math.min(500 * 2 ** (restartTimes.length - 1), 8_000));
      if (stopping) return;
      try {
        server = await launch();
        if (server.process.exitCode !== null || server.process.signalCode !== null) throw new Error('exited right after starting');
        o.log.info(`Temporal dev server restarted (pid ${server.process.pid}); worker and API reconnect to ${server.address}`);
        return;
      } catch (err) {
        o.log.error({ err: (err as Error).message }, 'Temporal dev server restart failed');
        code = null;
        signal = null;
      }
    }
  };

  server = await launch();
  return {
    address: server.address,
    current: () => server,
    restarts: () => total,
    async stop() {
      stopping = true;
      await restarting;
      await server.stop();
      rmSync(o.pidfile, { force: true });
    },
  };
}
