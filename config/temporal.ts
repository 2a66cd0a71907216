import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, type ClientOptions, type ConnectionLike, type ConnectionOptions, type WorkflowClientInterceptor } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { workflowStarts } from './metrics.js';
import { currentLogContext } from './log-context.js';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';

import { publicBaseUrl, type Env } from './env.js';
import { AesGcmPayloadCodec } from './payload-codec.js';
import { loadKeyring, type Keyring } from '../db/vault.js';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/shared/search-attributes.js';

/** Temporal settings: read here and nowhere else. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  tls?: { serverName?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } };
  apiKey?: string;
}

export async function temporalSettings(env: Env): Promise<TemporalSettings> {
  const wantsTls = Boolean(env.TEMPORAL_TLS_CERT_PATH || env.TEMPORAL_TLS_CA_PATH || env.TEMPORAL_API_KEY);
  return {
    address: env.TEMPORAL_ADDRESS ?? `localhost:${env.TEMPORAL_DEV_PORT}`,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    apiKey: env.TEMPORAL_API_KEY,
    tls: wantsTls
      ? {
          serverName: env.TEMPORAL_TLS_SERVER_NAME,
          serverRootCACertificate: env.TEMPORAL_TLS_CA_PATH ? await readFile(env.TEMPORAL_TLS_CA_PATH) : undefined,
          clientCertPair:
            env.TEMPORAL_TLS_CERT_PATH && env.TEMPORAL_TLS_KEY_PATH
              ? { crt: await readFile(env.TEMPORAL_TLS_CERT_PATH), key: await readFile(env.TEMPORAL_TLS_KEY_PATH) }
              : undefined,
        }
      : undefined,
  };
}

export function clientConnectionOptions(s: TemporalSettings): ConnectionOptions {
  return { address: s.address, tls: s.tls, apiKey: s.apiKey, connectTimeout: '10s' };
}

export function workerConnectionOptions(s: TemporalSettings): NativeConnectionOptions {
  return { address: s.address, tls: s.tls, apiKey: s.apiKey };
}

/**
 * Registers the search attributes the workflows use. Idempotent. On clusters where the
 * caller lacks the permission (e.g. Temporal Cloud), it reports which ones to add by hand.
 */
export async function ensureSearchAttributes(connection: Pick<Connection, 'operatorService'>, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  const typeMap = { KEYWORD: 2, TEXT: 1, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 } as const;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, typeMap[k.type]])),
    });
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 6 /* gRPC ALREADY_EXISTS */) return;
    throw new Error(
      `Could not register search attributes ${missing.map((k) => k.name).join(', ')} in namespace ${namespace}: ${(err as Error).message}. ` +
        'Register them as Keyword attributes (temporal operator search-attribute create) and restart.',
    );
  }
}

export async function connectClient(s: TemporalSettings): Promise<Connection> {
  return Connection.connect(clientConnectionOptions(s));
}

export async function connectWorker(s: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect(workerConnectionOptions(s));
}

// ---------------------------------------------------------------------------------------------
// The one data converter. Every Temporal client and worker of the platform (API, worker, scripts,
// benches, tests) is built through createTemporalClient / workerDataConverter below (and
// worker/create-worker.ts), so payloads are always encrypted: new code gets it by default.
// ---------------------------------------------------------------------------------------------

/** The payload keyring: HOSTFLOW_PAYLOAD_KEYS, else DATA_DIR/payload-keys (generated once, mode 0600). */
export function loadPayloadKeyring(env: Pick<Env, 'HOSTFLOW_PAYLOAD_KEYS' | 'DATA_DIR'>): Promise<Keyring> {
  return loadKeyring(env.HOSTFLOW_PAYLOAD_KEYS, join(env.DATA_DIR, 'payload-keys'), 'HOSTFLOW_PAYLOAD_KEYS');
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The embedded dev server's Web UI URL: the host name of PUBLIC_BASE_URL (default 127.0.0.1), so
 * the console, the codec endpoint and the UI are on one *site* and the codec cookie (SameSite=Strict,
 * api/routes/temporal/codec-cookie.ts) reaches the codec; the dev server listens on loopback only,
 * so a non-loopback PUBLIC_BASE_URL host falls back to 127.0.0.1 (then put the UI behind that name).
 */
export function devUiUrl(env: Pick<Env, 'PUBLIC_BASE_URL' | 'API_PORT' | 'TEMPORAL_UI_PORT'>): string {
  const host = new URL(publicBaseUrl(env as Env)).hostname;
  return `http://${LOOPBACK_NAMES.has(host) ? host : '127.0.0.1'}:${env.TEMPORAL_UI_PORT}`;
}

/** Origins allowed to call the codec endpoint (the Web UI's). */
export function temporalUiOrigins(env: Pick<Env, 'TEMPORAL_UI_ORIGINS' | 'TEMPORAL_UI_PORT'>): string[] {
  if (env.TEMPORAL_UI_ORIGINS) return env.TEMPORAL_UI_ORIGINS.split(',').map((s) => s.trim().replace(/\/+$/, ''));
  return [`http://localhost:${env.TEMPORAL_UI_PORT}`, `http://127.0.0.1:${env.TEMPORAL_UI_PORT}`];
}

/** Path of the failure converter module (messages and stack traces encoded, hence encrypted). */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/**
 * The data converter of every client and worker: the AES-256-GCM codec, and failure messages moved
 * into (encrypted) payloads. The failure converter goes by path: the SDK `require`s it, and the
 * workflow bundle (worker/create-worker.ts) has the same module inside.
 */
export function dataConverter(ring: Keyring): DataConverter {
  return { payloadCodecs: [new AesGcmPayloadCodec(ring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/**
 * Start options for a workflow the caller starts and then waits on (host ping, user lookup, an
 * account operation, the first steps of an allocation or an account opening). With a worker in this
 * process on the client's own NativeConnection (`eagerStart`), the server hands the first workflow
 * task back in the start response instead of dispatching it through matching. When that worker has
 * no free slot, or polls another queue, the server starts the workflow normally: the request is a
 * hint, never a different outcome, and the history is the same.
 */
export function eagerStartOptions(t: { eagerStart?: boolean }): { requestEagerStart?: true } {
  return t.eagerStart ? { requestEagerStart: true } : {};
}

/** Counts workflow starts per type and outcome (hostflow_workflow_starts_total). */
export const startMetricsInterceptor: WorkflowClientInterceptor = {
  async startWithDetails(input, next) {
    try {
      const out = await next(input);
      workflowStarts.inc({ workflow_type: input.workflowType, outcome: 'started' });
      return out;
    } catch (err) {
      workflowStarts.inc({ workflow_type: input.workflowType, outcome: err instanceof WorkflowExecutionAlreadyStartedError ? 'already_started' : 'error' });
      throw err;
    }
  },
};

/** The memo with the request id of the API request that starts the workflow (when there is one). */
function withRequestMemo<O extends { memo?: Record<string, unknown> }>(options: O): O {
  const requestId = currentLogContext()?.requestId;
  if (!requestId || options.memo?.requestId) return options;
  return { ...options, memo: { ...options.memo, requestId } };
}

/**
 * Puts the API request id into the memo of every workflow a request starts (memos are payloads:
 * encrypted by the codec), so a run found in the Web UI leads to the request's log lines.
 */
export const requestMemoInterceptor: WorkflowClientInterceptor = {
  startWithDetails: (input, next) => next({ ...input, options: withRequestMemo(input.options) }),
  signalWithStart: (input, next) => next({ ...input, options: withRequestMemo(input.options) }),
  startUpdateWithStart: (input, next) => next({ ...input, workflowStartOptions: withRequestMemo(input.workflowStartOptions) }),
};

/** One per process: it only holds the tracer (config/tracing.ts installs the provider). */
const otelClientInterceptor = new OpenTelemetryWorkflowClientInterceptor();

/**
 * A Temporal client with the platform's data converter and interceptors (start metrics, tracing:
 * the start / Update / signal span and its context in the headers, the request id memo). Extra
 * options are merged in; extra workflow interceptors run after the platform's.
 */
export function createTemporalClient(o: { connection: ConnectionLike; namespace?: string; payloadKeys: Keyring } & Omit<ClientOptions, 'connection' | 'namespace' | 'dataConverter'>): Client {
  const { connection, namespace, payloadKeys, interceptors, ...rest } = o;
  return new Client({
    ...rest,
    connection,
    namespace: namespace ?? 'default',
    dataConverter: dataConverter(payloadKeys),
    interceptors: { ...interceptors, workflow: [startMetricsInterceptor, otelClientInterceptor, requestMemoInterceptor, ...((interceptors?.workflow as WorkflowClientInterceptor[] | undefined) ?? [])] },
  });
}

/**
 * Start options that make a run readable in the Web UI: a one-line human summary (the UI's
 * "Summary", `staticSummary`) and the memo's `summary` (with `extra` fields), e.g. "Account alice on
 * gpu-07 for Alice Example". Both are payloads, encrypted by the codec: names may go here, never in
 * search attributes. The API request id joins the memo on its own (requestMemoInterceptor).
 */
export function runSummary(summary: string, extra: Record<string, unknown> = {}): { staticSummary: string; memo: Record<string, unknown> } {
  const s = summary.length > 200 ? `${summary.slice(0, 199)}…` : summary;
  return { staticSummary: s, memo: { ...extra, summary: s } };
}
