import { readFile } from 'node:fs/promises';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';

import type { Env } from './env.js';
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
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
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
