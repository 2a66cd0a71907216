import os from 'node:os';

/**
 * Runs `cleanup` when the process exits, and turns SIGINT / SIGTERM / SIGHUP into an exit so that
 * every 'exit' handler runs (this one and the test helpers' synchronous cleanups of sshd,
 * PostgreSQL and their temp dirs). Install it before the helpers start, so it runs first.
 */
export function cleanUpOnExit(cleanup: () => void): void {
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`[bench] ${sig}: cleaning up\n`);
      process.exit(128 + (os.constants.signals[sig] ?? 1));
    });
  }
}
