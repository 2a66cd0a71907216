import { ApplicationFailure, condition, defineQuery, defineUpdate, proxyActivities, setHandler, upsertSearchAttributes, allHandlersFinished } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { LifecycleStatusKey } from './shared/search-attributes.js';
import { actorMay } from './shared/actor.js';
import { isSameParty } from './shared/duties.js';

/**
 * role-grant/<grantId>: the API has added the role to the user; this sleeps durably to one day
 * before `until` (reminds the user, once per end moment), then to `until`, and takes the role
 * away exactly once (endRoleGrant is a no-op on a grant that is no longer active). `extend`
 * moves the end (and the reminder); `revoke` ends it now. Both are Updates with validators.
 */
export interface RoleGrantInput {
  grantId: string;
  userId: string;
  role: string;
  grantedBy: string;
  untilMs: number;
}

export interface RoleGrantActor {
  id: string;
  username: string;
  roles: string[];
  /** Effective permissions (api/authz); absent in histories recorded before they existed. */
  permissions?: string[];
}

export interface RoleGrantState {
  status: 'active' | 'expired' | 'revoked';
  until: string;
  /** End moments (ISO) whose 1-day reminder was sent. */
  remindedFor: string[];
  revokedBy?: string;
  revokeReason?: string;
}

export const REMINDER_BEFORE_MS = 86_400_000;

export const extendGrantUpdate = defineUpdate<RoleGrantState, [{ until: string; actor: RoleGrantActor }]>('extend');
export const revokeGrantUpdate = defineUpdate<RoleGrantState, [{ reason: string; actor: RoleGrantActor }]>('revoke');
export const roleGrantStateQuery = defineQuery<RoleGrantState>('state');

const db = proxyActivities<Pick<Activities, 'endRoleGrant' | 'setRoleGrantUntil' | 'notifyRoleGrant'>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '5 minutes' },
});

export async function roleGrant(input: RoleGrantInput): Promise<RoleGrantState> {
  let untilMs = input.untilMs;
  let revoke: { by: string; reason: string } | null = null;
  let wake = false;
  let dirty = false;
  const reminded = new Set<number>();
  const state = (): RoleGrantState => ({
    status: revoke ? 'revoked' : 'active',
    until: new Date(untilMs).toISOString(),
    remindedFor: [...reminded].map((t) => new Date(t).toISOString()),
    ...(revoke ? { revokedBy: revoke.by, revokeReason: revoke.reason } : {}),
  });
  let final: RoleGrantState['status'] | null = null;

  setHandler(roleGrantStateQuery, () => (final ? { ...state(), status: final } : state()));
  setHandler(
    extendGrantUpdate,
    ({ until }) => {
      untilMs = Date.parse(until);
      wake = true;
      dirty = true;
      return state();
    },
    {
      validator: ({ until, actor }) => {
        requireActive();
        requireAdmin(actor);
        const t = Date.parse(until);
        if (!Number.isFinite(t)) throw invalid('until: not a date');
        if (t <= untilMs) throw invalid(`until: must be later than the current end ${new Date(untilMs).toISOString()}`);
      },
    },
  );
  setHandler(
    revokeGrantUpdate,
    ({ reason, actor }) => {
      revoke = { by: actor.id, reason: reason.trim() };
      wake = true;
      return state();
    },
    {
      validator: ({ reason, actor }) => {
        requireActive();
        requireAdmin(actor);
        if (!reason || !reason.trim()) throw invalid('reason: a reason is required');
      },
    },
  );
  function requireActive() {
    if (final || revoke) throw ApplicationFailure.create({ type: 'NotPending', message: `the grant is ${final ?? 'revoked'}` });
  }
  function requireAdmin(actor: RoleGrantActor) {
    if (!actorMay(actor, 'role_grant.manage', ['admin'])) throw forbidden('changing a role grant needs the role_grant.manage permission');
    if (isSameParty(actor, { id: input.userId })) throw forbidden('nobody changes a grant of their own');
  }

  // A reminder whose moment has passed when the grant starts (a grant shorter than a day) is not sent.
  const startedAt = Date.now();
  const reminderDue = () => untilMs - REMINDER_BEFORE_MS;
  for (;;) {
    if (dirty) {
      dirty = false;
      await db.setRoleGrantUntil(input.grantId, untilMs);
    }
    if (revoke) break;
    const remindAt = reminderDue();
    const remind = !reminded.has(untilMs) && remindAt > startedAt;
    const at = remind ? remindAt : untilMs;
    const delay = at - Date.now();
    if (delay > 0 && (await condition(() => wake, delay))) {
      wake = false;
      continue;
    }
    wake = false;
    if (remind) {
      await db.notifyRoleGrant({ grantId: input.grantId, event: 'reminder', untilMs });
      reminded.add(untilMs);
      continue;
    }
    break;
  }

  const r = revoke as { by: string; reason: string } | null;
  const status = r ? 'revoked' : 'expired';
  const { ended } = await db.endRoleGrant({ grantId: input.grantId, status, atMs: Date.now(), ...(r ? { actorId: r.by, reason: r.reason } : {}) });
  final = status;
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: status }]);
  if (ended) await db.notifyRoleGrant({ grantId: input.grantId, event: status, untilMs });
  await condition(allHandlersFinished);
  return { ...state(), status };
}

const forbidden = (message: string) => ApplicationFailure.create({ type: 'Forbidden', message });
const invalid = (message: string) => ApplicationFailure.create({ type: 'Invalid', message });
