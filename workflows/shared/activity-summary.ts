// Activity summaries for the Web UI's timeline ("create account alice on gpu-07" instead of
// `provisionAccount`): the SDK's per-call `summary` (user metadata on the ScheduleActivityTask
// command). It is a payload, so the codec encrypts it like every other one. User metadata is not
// part of the determinism check (replaying an old history without it, or a new one with it, gives
// the same commands): no patch needed (test/replay/ proves it).
//
// The default: every activity call gets one. `ACTIVITY_SUMMARIES` says, per activity type, how to
// word a call from its arguments and the run's memo (host, username, customer, slug… set by the API
// or by the parent that started the child); the bundle's summary interceptor
// (workflows/shared/summary-interceptors.ts) applies it to every scheduled activity and local
// activity whose call site gave none. A call site may still pass its own (`executeWithOptions`
// with `summary(...)`). Only ids, names, statuses and counts go in: never command text, task
// samples, notification data or anything that may hold a secret.
// test/workflows/activity-summaries.test.ts fails when a workflow calls an activity that has no
// entry here, and when a recorded history's activity would be scheduled without a summary.
import { workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';

/** The run's memo fields the API set at start (runSummary's extra: host, username, customer, slug…). */
export function memoField(name: string): string | undefined {
  const v = (workflowInfo().memo as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' && v ? v : undefined;
}

const MAX = 200;
const clip = (text: string) => (text.length > MAX ? `${text.slice(0, MAX - 1)}…` : text);

/** Call-site options with a one-line summary; `parts` that are unknown are left out ("on gpu-07" only when the host is known). */
export function summary(verb: string, parts: Array<[string, string | undefined]> = []): Pick<ActivityOptions, 'summary'> {
  const text = [verb, ...parts.filter(([, v]) => v).map(([prep, v]) => (prep ? `${prep} ${v}` : v!))].join(' ');
  return { summary: clip(text) };
}

/** What a describer may read of the run: its memo's string fields. */
export interface RunMemo {
  get(name: string): string | undefined;
}

type ArgsOf<F> = F extends (...args: infer A) => unknown ? A : never;
type Describer<K extends keyof Activities> = (args: ArgsOf<Activities[K]>, m: RunMemo) => string;

/** The host as the run knows it: its slug from the memo, else its id. */
const hostOf = (m: RunMemo, hostId?: string): string => m.get('host') ?? m.get('slug') ?? (hostId ? `host ${hostId}` : 'the host');
/** The tenant account of an allocation: "alice on gpu-07", or the allocation id when the memo has no names. */
const tenantOf = (m: RunMemo, allocationId: string): string => {
  const user = m.get('username');
  const host = m.get('host');
  if (user) return host ? `${user} on ${host}` : user;
  return host ? `the tenant on ${host}` : `the tenant of allocation ${allocationId}`;
};
const forCustomer = (m: RunMemo) => (m.get('customer') ? ` for ${m.get('customer')}` : '');
const day = (ms: number | undefined) => (typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') : '?');
const keyOf = (m: RunMemo, keyId: string) => (m.get('fingerprint') ? `SSH key ${m.get('fingerprint')}` : `SSH key ${keyId}`);
const accountOf = (m: RunMemo, accountId: string) => {
  const user = m.get('username');
  return user ? `account ${user}${m.get('host') ? ` on ${m.get('host')}` : ''}` : `account ${accountId}`;
};

/**
 * How each activity's call reads in the Web UI. Optional per type so that activities no workflow
 * calls need no entry; the summaries test fails for one a workflow calls without an entry.
 */
export const ACTIVITY_SUMMARIES: { [K in keyof Activities]?: Describer<K> } = {
  // Account opening (its call sites also pass their own).
  provisionAccount: (_a, m) => `create account ${m.get('username') ?? ''} on ${hostOf(m)}`.replace('  ', ' '),
  verifyAccountLogin: (_a, m) => `verify login of ${m.get('username') ?? 'the new account'} on ${hostOf(m)}`,
  rollbackAccount: (_a, m) => `roll back account ${m.get('username') ?? ''} on ${hostOf(m)}`.replace('  ', ' '),
  setRequestStatus: ([, patch]) => `account request → ${patch.status}`,
  requestHostId: ([requestId]) => `look up the host of request ${requestId}`,

  // Allocation.
  cleanPreviousTenant: ([id], m) => `clean previous tenant on ${m.get('host') ?? `the host of allocation ${id}`}`,
  createCustomerAccount: ([id], m) => `create account ${tenantOf(m, id)}${forCustomer(m)}`,
  injectCustomerKeys: ([id], m) => `inject SSH keys for ${tenantOf(m, id)}`,
  verifyCustomerLogin: ([id], m) => `verify login of ${tenantOf(m, id)}`,
  deployVnc: ([id], m) => `deploy VNC server for ${tenantOf(m, id)}`,
  sendConnectionSummary: ([id], m) => `send connection details to ${m.get('username') ?? m.get('customer') ?? `the customer of allocation ${id}`}`,
  setAllocationStep: ([, phase, step, , status]) => `${phase} step ${step} → ${status}`,
  setAllocationStatus: ([id, status], m) => `allocation ${m.get('host') ? `on ${m.get('host')}` : id} → ${status}`,

  // Lease.
  recordLeaseEvent: ([e], m) =>
    e.kind === 'ended'
      ? `send end-of-term notice to ${tenantOf(m, e.allocationId)}, buffer until ${day(e.bufferEndsAtMs)}`
      : `send the ${e.kind.startsWith('reminder-') ? e.kind.slice('reminder-'.length) : e.kind} reminder to ${tenantOf(m, e.allocationId)} (ends ${day(e.endsAtMs)})`,

  // Reclaim.
  endAllocationSessions: ([id], m) => `end browser sessions of ${tenantOf(m, id)}`,
  allocationHasVnc: ([id]) => `check whether allocation ${id} has a VNC server`,
  removeVnc: ([id], m) => `stop VNC server of ${tenantOf(m, id)}`,
  checkRunningTasks: ([id], m) => `check running tasks of ${tenantOf(m, id)}`,
  notifyRunningTasks: ([id, sample, graceEndsAtMs], m) => `tell ${m.get('username') ?? `the tenant of allocation ${id}`} about ${sample.length} running task(s), grace until ${day(graceEndsAtMs)}`,
  stopCustomerTasks: ([id], m) => `stop processes of ${tenantOf(m, id)}`,
  revokeCustomerKeys: ([id], m) => `revoke SSH keys of ${tenantOf(m, id)}`,
  lockCustomerAccount: ([id], m) => `lock account ${tenantOf(m, id)}`,
  cleanCustomerLeftovers: ([id], m) => `remove crontab, temp files and leftovers of ${tenantOf(m, id)}`,
  deleteCustomerAccount: ([id], m) => `delete account ${tenantOf(m, id)}`,
  allocationTemplate: ([id]) => `look up the environment template of allocation ${id}`,
  applyEnvTemplate: ([hostId, templateId], m) => `apply environment template ${templateId} on ${hostOf(m, hostId)}`,
  verifyReclaimClean: ([id], m) => `verify nothing of ${tenantOf(m, id)} is left`,
  finishReclaim: ([id], m) => `mark allocation ${id} reclaimed and ${m.get('host') ?? 'its host'} online`,
  failReclaim: ([id, step]) => `mark the reclaim of allocation ${id} failed at ${step}`,

  // Host lock and change lock.
  allocationHoldsHost: ([id]) => `check that allocation ${id} still holds its host`,
  requestHostChangeLock: ([hostId, r]) => `request the change lock of host ${hostId} for ${r.purpose}`,

  // Onboarding and recheck.
  onboardConnect: ([hostId], m) => `connect to ${hostOf(m, hostId)} and pin its host key`,
  collectHostFacts: ([hostId], m) => `collect facts of ${hostOf(m, hostId)}`,
  configureRemoteAccess: ([hostId], m) => `configure remote access of ${hostOf(m, hostId)}`,
  verifyHost: ([hostId], m) => `verify ${hostOf(m, hostId)}`,
  setOnboardingStep: ([hostId, step, status], m) => `onboarding of ${hostOf(m, hostId)}: ${step} → ${status}`,
  recordOnboardingSteps: ([hostId, writes, status], m) => `record ${writes.length} onboarding step(s) of ${hostOf(m, hostId)}${status ? `, host → ${status}` : ''}`,
  setHostStatus: ([hostId, to], m) => `${hostOf(m, hostId)} → ${to}`,
  listRecheckHosts: () => 'list hosts to recheck',
  recordRecheck: ([hostId, ok], m) => `record recheck of ${hostOf(m, hostId)}: ${ok ? 'answered' : 'no answer'}`,
  pingHost: ([hostId], m) => `ping ${hostOf(m, hostId)}`,
  markHostSeen: ([hostId], m) => `mark ${hostOf(m, hostId)} seen`,
  lookupHostUser: ([hostId, username], m) => `look up user ${username} on ${hostOf(m, hostId)}`,

  // Gateway.
  syncGateway: ([i]) => `render and reload the gateway config (${i.reason})`,

  // SSH keys.
  activeAllocationsOfKeyOwner: ([keyId], m) => `find active rentals of the owner of ${keyOf(m, keyId)}`,
  allocationsOfKeyOwner: ([keyId], m) => `find rentals of the owner of ${keyOf(m, keyId)}`,
  addKeyToAllocation: ([id, keyId], m) => `add ${keyOf(m, keyId)} to the account of allocation ${id}`,
  removeRevokedKey: ([id, keyId], m) => `remove ${keyOf(m, keyId)} from the account of allocation ${id}`,

  // Cloud-user operations.
  setHostAccountEnabled: ([accountId, enabled], m) => `${enabled ? 'enable' : 'disable'} ${accountOf(m, accountId)}`,
  resetHostAccountPassword: ([accountId], m) => `reset the password of ${accountOf(m, accountId)}`,
  deleteHostAccount: ([accountId], m) => `delete ${accountOf(m, accountId)}`,
  resetVncPassword: ([accountId], m) => `reset the VNC password of ${accountOf(m, accountId)}`,
  restartVncServer: ([accountId], m) => `restart the VNC server of ${accountOf(m, accountId)}`,

  // Registration and role grants.
  setRegistrationStatus: ([id, patch]) => `registration ${id}${patch.status ? ` → ${patch.status}` : ': update'}`,
  activateRegistration: ([id, roles]) => `activate the user of registration ${id} with role(s) ${roles.join(', ') || 'none'}`,
  sendRegistrationLinkMail: ([i]) => `mail the ${i.purpose} link of registration ${i.registrationId} (round ${i.round})`,
  notifyRegistrationReviewers: ([i]) => `tell reviewers: ${i.event} of registration ${i.registrationId} (round ${i.round})`,
  notifyRegistrationApplicant: ([i]) => `tell the applicant: registration ${i.registrationId} ${i.event}`,
  sendActivationMail: ([i]) => `mail the activation notice of registration ${i.registrationId}`,
  notifyRoleGrant: ([i], m) => `tell the grantee: role ${m.get('role') ?? `grant ${i.grantId}`} ${i.event}`,
  endRoleGrant: ([i], m) => `end role ${m.get('role') ?? `grant ${i.grantId}`}: ${i.status}`,
  setRoleGrantUntil: ([grantId, untilMs], m) => `role ${m.get('role') ?? `grant ${grantId}`} until ${day(untilMs)}`,

  // Notifications (the event name only: its data may name people).
  notify: ([i]) => ('event' in i ? `notify ${i.event}` : `notify ${i.eventKey.split('/')[0]}`),

  // Scheduled housekeeping.
  archiveAuditTrail: ([i]) => `archive audit events older than ${i.retentionDays} days`,
  pruneRecordings: ([i]) => `${i.mode} session recordings older than ${i.retentionDays} days`,
  reconcileStatuses: () => 'reconcile statuses the database and the runs disagree on',
  reconcilePendingPasswords: () => 'settle passwords left pending by interrupted runs',
  deliverSecurityAlerts: () => 'deliver security alerts',
};

const memoView = (): RunMemo => ({ get: memoField });

/**
 * A timer's summary (TimerOptions, also user metadata: not part of the determinism check), e.g. the
 * lease's "wait for the 3d reminder to alice on gpu-07 (due 2026-12-07 08:00)".
 */
export function timerSummary(what: (tenant: string) => string, allocationId: string, atMs?: number): { summary: string } {
  return { summary: clip(`${what(tenantOf(memoView(), allocationId))}${atMs === undefined ? '' : ` (due ${day(atMs)})`}`) };
}

/**
 * The summary of a call of `activityType` with `args`, or undefined when the type has no entry.
 * A describer that throws (an argument shape from an older run) falls back to the type's name:
 * a summary must never fail a workflow task.
 */
export function describeActivity(activityType: string, args: unknown[]): string | undefined {
  const d = (ACTIVITY_SUMMARIES as Record<string, ((a: unknown[], m: RunMemo) => string) | undefined>)[activityType];
  if (!d) return undefined;
  try {
    return clip(d(args, memoView()));
  } catch {
    return activityType;
  }
}
