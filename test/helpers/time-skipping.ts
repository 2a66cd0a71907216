/**
 * Temporal time-skipping test environment backed by the *Java* test server from Maven Central
 * (io.temporal:temporal-test-server), started through `scripts/temporal-test-server.sh`.
 * No release binary is downloaded.
 *
 * Notes:
 * - With `executable: { type: 'existing-path' }` the SDK (sdk-core `TestServerConfig`) runs
 *   `<path> <port> ...extraArgs` and nothing else; it does NOT pass `--enable-time-skipping`.
 *   That is intended: the server starts with time skipping locked and the SDK's client unlocks
 *   it while a workflow result is awaited (and `env.sleep()` skips explicitly).
 * - The SDK gives the spawned server only ~5 s (50 x 100 ms) to accept connections. A cold
 *   Maven resolve takes longer, so we run `--resolve-only` first; after that the JVM is up in ~1 s.
 * - The SDK kills the spawned process on teardown; the script `exec`s java so that kill reaches
 *   the JVM directly.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { installWorkerRuntime } from '../../worker/create-worker.js';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes.js';
import { testDataConverter } from './temporal.js';

const execFileAsync = promisify(execFile);

/** Absolute path of the wrapper script that runs the Java time-skipping test server. */
export const TEMPORAL_TEST_SERVER_SCRIPT = fileURLToPath(new URL('../../scripts/temporal-test-server.sh', import.meta.url));

let resolved: Promise<void> | undefined;

/** Resolves the Java test server's classpath via Maven (cached; only slow the first time). */
export function ensureTemporalTestServerResolved(): Promise<void> {
  resolved ??= execFileAsync(TEMPORAL_TEST_SERVER_SCRIPT, ['--resolve-only'], { timeout: 300_000 }).then(
    () => undefined,
    (err: unknown) => {
      resolved = undefined;
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`${TEMPORAL_TEST_SERVER_SCRIPT} --resolve-only failed: ${String(err)}\n${stderr}`);
    },
  );
  return resolved;
}

export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  await ensureTemporalTestServerResolved();
  installWorkerRuntime('WARN');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEMPORAL_TEST_SERVER_SCRIPT } },
    // The env's client (env.client) encrypts like every platform client; workers created on
    // env.nativeConnection pass `dataConverter: testDataConverter()`.
    client: { dataConverter: testDataConverter() },
  });
  // The platform's workflows carry custom search attributes: register them as on a real cluster.
  // (The Java test server implements AddSearchAttributes but not ListSearchAttributes.)
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((k) => [k.name, 2 /* KEYWORD */])),
  });
  return env;
}
