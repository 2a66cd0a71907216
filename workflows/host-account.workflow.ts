import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { remoteRetry } from './shared/policies.js';

/**
 * host-account/<accountId>/<op>/<ts>: one change to a managed OS account (disable, enable,
 * reset-password, delete). Only accounts the platform created are touched (checked by the activity).
 */
export type HostAccountOp = 'disable' | 'enable' | 'reset-password' | 'delete';

export interface HostAccountOpResult {
  accountId: string;
  op: HostAccountOp;
  status: string;
}

const remote = proxyActivities<Pick<Activities, 'setHostAccountEnabled' | 'resetHostAccountPassword' | 'deleteHostAccount'>>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: remoteRetry,
});

export async function hostAccountOperation(input: { accountId: string; op: HostAccountOp }): Promise<HostAccountOpResult> {
  const { accountId, op } = input;
  switch (op) {
    case 'disable':
    case 'enable': {
      const r = await remote.setHostAccountEnabled(accountId, op === 'enable');
      return { accountId, op, status: r.status };
    }
    case 'reset-password': {
      await remote.resetHostAccountPassword(accountId, workflowInfo().workflowId);
      return { accountId, op, status: 'active' };
    }
    case 'delete': {
      const r = await remote.deleteHostAccount(accountId);
      return { accountId, op, status: r.status };
    }
  }
}
