// The Temporal side of CLI commands (`runs`, `doctor`): a client with the platform's data
// converter (payload codec), from the same settings as the API and worker.
import type { Client, Connection } from '@temporalio/client';
import type { Env } from '../config/env.js';
import { connectClient, createTemporalClient, loadPayloadKeyring, temporalSettings, type TemporalSettings } from '../config/temporal.js';
import type { Keyring } from '../db/vault.js';

export interface CliTemporal {
  settings: TemporalSettings;
  connection: Connection;
  client: Client;
  payloadKeys: Keyring;
}

export async function openTemporal(e: Env): Promise<CliTemporal> {
  const settings = await temporalSettings(e);
  const payloadKeys = await loadPayloadKeyring(e);
  let connection: Connection;
  try {
    connection = await connectClient(settings);
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${settings.address}: ${(err as Error).message} (is \`npm start\` running, or TEMPORAL_ADDRESS right?)`);
  }
  return { settings, connection, payloadKeys, client: createTemporalClient({ connection, namespace: settings.namespace, payloadKeys }) };
}
