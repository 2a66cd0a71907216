import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { dbActivityOptions, notifyActivityOptions } from './shared/policies.js';

/**
 * Run by the Temporal Schedule `host-recheck`: re-collects facts of online/offline hosts; a host
 * that fails `offlineAfter` consecutive checks goes offline, one that answers again comes back.
 * Status changes are notified (events host.offline / host.online: admins, plus subscribers).
 */
const db = proxyActivities<Pick<Activities, 'listRecheckHosts' | 'recordRecheck'>>(dbActivityOptions);
const notifier = proxyActivities<Pick<Activities, 'notify'>>(notifyActivityOptions);
const remote = proxyActivities<Pick<Activities, 'collectHostFacts'>>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 1 },
});

export async function hostRecheck(input: { offlineAfter?: number; concurrency?: number } = {}): Promise<{ checked: number; failed: number; changed: string[] }> {
  const ids = await db.listRecheckHosts();
  const threshold = input.offlineAfter ?? 3;
  const changed: string[] = [];
  let failed = 0;
  const limit = input.concurrency ?? 20;
  for (let i = 0; i < ids.length; i += limit) {
    await Promise.all(
      ids.slice(i, i + limit).map(async (hostId) => {
        let ok = true;
        try {
          await remote.collectHostFacts(hostId);
        } catch {
          ok = false;
          failed++;
        }
        const r = await db.recordRecheck(hostId, ok, threshold);
        if (r.changed) {
          changed.push(`${hostId}:${r.status}`);
          await notifier.notify({
            event: r.status === 'offline' ? 'host.offline' : 'host.online',
            key: `host-recheck/${hostId}/${r.status}/${r.failures}/${new Date().toISOString().slice(0, 13)}`,
            to: { roles: ['admin'] },
            data: { hostId, failures: r.failures },
          });
        }
      }),
    );
  }
  return { checked: ids.length, failed, changed };
}
