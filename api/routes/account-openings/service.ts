// Account-opening domain operations shared by routes (and usable by the CLI and tests).
import type { AppDeps } from '../../deps.js';
import type { FieldError } from '../../errors.js';
import { HostAccountSchema, type Host } from '../../../db/entities/index.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import { TypedSearchAttributes } from '@temporalio/common';
import type { hostUserLookup } from '../../../workflows/host-user-lookup.workflow.js';

/** How long submit waits for the on-host lookup before accepting (execution checks again). */
export const USER_LOOKUP_WAIT_MS = 8_000;

/**
 * Is `username` free on `host`? Refuses (as field errors on `username`) what provisioning would
 * refuse: the host's management login, a name the platform already manages there, and an OS account
 * that exists on the host — checked over SSH/WinRM (workflow `host-user-lookup/<hostId>/<ts>`) when
 * the host answers within USER_LOOKUP_WAIT_MS. An unreachable host is not a refusal: the
 * account-opening workflow checks again before it creates anything.
 */
export async function usernameIssuesOnHost(
  deps: Pick<AppDeps, 'em' | 'temporal' | 'logger'>,
  input: { host: Host; username: string },
): Promise<FieldError[]> {
  const { host, username } = input;
  if (username === host.username) {
    return [{ field: 'username', message: `"${username}" is the platform's management login on ${host.slug}` }];
  }
  const managed = await deps.em.fork().findOne(HostAccountSchema, { host: host.id, username, status: { $ne: 'deleted' } }, { fields: ['id'] });
  if (managed) return [{ field: 'username', message: `"${username}" is already an account on ${host.slug}, managed by the platform` }];
  const exists = await lookupOnHost(deps, host, username);
  if (exists) return [{ field: 'username', message: `user "${username}" already exists on ${host.slug} and was not created by the platform` }];
  return [];
}

async function lookupOnHost(deps: Pick<AppDeps, 'temporal' | 'logger'>, host: Host, username: string): Promise<boolean | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const handle = await deps.temporal.client.workflow.start<typeof hostUserLookup>('hostUserLookup', {
      workflowId: `host-user-lookup/${host.id}/${new Date().toISOString().replace(/[-:.]/g, '')}-${Math.random().toString(36).slice(2, 8)}`,
      taskQueue: deps.temporal.taskQueue,
      args: [{ hostId: host.id, username }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: host.id }]),
      workflowExecutionTimeout: '1 minute',
    });
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), USER_LOOKUP_WAIT_MS);
    });
    const r = await Promise.race([handle.result(), timeout]);
    return r ? r.exists : null;
  } catch (err) {
    deps.logger.info({ host: host.slug, err: (err as Error).message }, 'user lookup at submit did not answer; execution checks again');
    return null;
  } finally {
    clearTimeout(timer);
  }
}
