// The suite's Temporal clients and workers get the platform's data converter (AES-256-GCM payload
// codec, encrypted failure messages) like production ones: build them through these helpers, or
// pass `dataConverter: testDataConverter()` where a test calls Worker.create / TestWorkflowEnvironment itself.
import { inject } from 'vitest';
import type { Client, ConnectionLike } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { createTemporalClient, dataConverter } from '../../config/temporal.js';
import { parseKeyring, type Keyring } from '../../db/vault.js';

/** The keyring global-setup generated for this run. */
export function testPayloadKeys(): Keyring {
  return parseKeyring(inject('payloadKeys'), 'payloadKeys (global-setup)');
}

export function testDataConverter(ring: Keyring = testPayloadKeys()): DataConverter {
  return dataConverter(ring);
}

export function testClient(connection: ConnectionLike, o: { namespace?: string; payloadKeys?: Keyring } = {}): Client {
  return createTemporalClient({ connection, namespace: o.namespace, payloadKeys: o.payloadKeys ?? testPayloadKeys() });
}
