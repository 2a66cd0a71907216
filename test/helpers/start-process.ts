// `npm start` as a user runs it, for the tests that start the real thing: a child process in its own
// process group (like a terminal's foreground job, so a test can signal the whole group), with the
// test runner's Temporal/DB/vitest variables removed and its output kept for failure messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const repo = resolve(import.meta.dirname, '../..');

export interface Run {
  child: ChildProcess;
  log: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function npmStart(env: Record<string, string>): Run {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env, LOG_LEVEL: 'info' };
  for (const k of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'NODE_OPTIONS', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete childEnv[k];
  const child = spawn('npm', ['start'], { cwd: repo, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, log: () => out, exit };
}

/** Polls `fn` every 250 ms until it gives a value (not undefined/false); on timeout the error carries npm start's last output. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms: number, run?: Run): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${run ? `\n--- npm start output ---\n${run.log().slice(-4000)}` : ''}`);
    await delay(250);
  }
}
