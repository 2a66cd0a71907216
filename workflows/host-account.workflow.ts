import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { remoteRetry } from './shared/policies.js';

/**
 * host-account/<accountId>/<op>/<ts>: one change to a managed OS account (disable, enable,
 * reset-password, delete, reset-vnc-password: a new password for the account's platform-deployed VNC
 * server, restart-vnc: that server started again when it is not running, e.g. after a host reboot).
 * Only accounts the platform created are touched (checked by the activity).
 */
export type HostAccountOp = 'disable' | 'enable' | 'reset-password' | 'delete' | 'reset-vnc-password' | 'restart-vnc';

export interface HostAccountOpResult {
  accountId: string;
  op: HostAccountOp;
  status: string;
  /** What the op found and did on the host (restart-vnc: running/started, display, port). */
  detail?: Record<string, unknown>;
}

const remote = proxyActivities<Pick<Activities, 'setHostAccountEnabled' | 'resetHostAccountPassword' | 'deleteHostAccount' | 'resetVncPassword' | 'restartVncServer'>>({
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
    // A new op (new runs only): no earlier history takes this branch.
    case 'reset-vnc-password': {
      await remote.resetVncPassword(accountId);
      return { accountId, op, status: 'active' };
    }
    // A new op (new runs only), like reset-vnc-password.
    case 'restart-vnc': {
      const detail = await remote.restartVncServer(accountId);
      return { accountId, op, status: 'active', detail };
    }
  }
}
