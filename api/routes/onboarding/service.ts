// Batch onboarding, read side: the batch's progress lives only in its Temporal workflow, so the row
// scope is applied to the hosts the batch was started with (its input, read from the first
// history event through the client's data converter, codec included).
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import { HostSchema } from '../../../db/entities/index.js';
import { notFound } from '../../errors.js';
import type { Scope } from '../../authz/scope.js';
import { batchProgressQuery, type BatchInput, type BatchProgress } from '../../../workflows/host-onboarding-batch.workflow.js';

const GRPC_NOT_FOUND = 5;

/** The host ids a batch workflow was started with, or null when there is no such workflow. */
export async function batchHostIds(client: Client, workflowId: string): Promise<string[] | null> {
  let res;
  try {
    res = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId }, maximumPageSize: 1 });
  } catch (err) {
    if ((err as { code?: number }).code === GRPC_NOT_FOUND) return null;
    throw err;
  }
  let payloads = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  if (!payloads.length) return [];
  const dc = client.options.loadedDataConverter;
  for (const codec of [...dc.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  const input = dc.payloadConverter.fromPayload<BatchInput>(payloads[0]!);
  return [...new Set((input.hosts ?? []).map((h) => h.hostId))];
}

/**
 * GET /hosts/onboard/:batchId: the batch exists for a caller only when every host of it that still
 * exists is in their row scope (an East-region operator's batches are all East: POST /hosts/onboard
 * takes only hosts in scope); otherwise 404, like a batch id that never existed.
 */
export async function batchView(deps: { em: SqlEntityManager; client: Client }, scope: Scope, batchId: string): Promise<BatchProgress & { done: boolean }> {
  const workflowId = `host-onboarding-batch/${batchId}`;
  const ids = await batchHostIds(deps.client, workflowId);
  if (!ids) throw notFound('batch');
  if (ids.length) {
    const em = deps.em.fork();
    const [existing, visible] = await Promise.all([em.count(HostSchema, { id: { $in: ids } }), em.count(HostSchema, (await scope.where(em, HostSchema, { id: { $in: ids } })) as never)]);
    if (visible < existing) throw notFound('batch');
  }
  const handle = deps.client.workflow.getHandle(workflowId);
  try {
    const desc = await handle.describe();
    const p = desc.status.name === 'RUNNING' ? await handle.query(batchProgressQuery) : await handle.result();
    return { ...p, done: desc.status.name !== 'RUNNING' };
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') throw notFound('batch');
    throw err;
  }
}
