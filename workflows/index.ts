// The workflow bundle entry: re-exports every workflow. Function names are workflow type names
// (part of the storage format): never rename one that may have running executions.
//
// VERSIONING RULE (one rule for every workflow; leases run for months):
// - A change to workflow code that alters the command sequence of a run already in flight (an
//   activity/timer/child/search-attribute upsert added, removed, reordered or made conditional
//   differently, or different inputs to a decision) goes behind `patched('<workflow>-<short-id>')`
//   from @temporalio/workflow: `if (patched('lease-extend-race')) { new } else { old }`. Ids are
//   storage format: never reuse or rename one; list the lease's in the doc comment of its file.
// - Once no open run can still take the old branch (no run started before the patch is open:
//   check with `WorkflowType = "<type>" AND StartTime < "<deploy time>"` in the Web UI, and for
//   leases wait out their term), replace the branch with `deprecatePatch('<id>')` and the new
//   code; one more deploy later, remove the call.
// - Record histories of the new code (`npm run replay:record`; existing fixtures are kept, they are
//   the old runs) and keep test/replay green. A change needing no patch (a query, a validator, an
//   Update handler that only changes state) still has to replay the recorded histories.
// - Worker Versioning (Worker Deployments, build ids) works with the dev server and SDK here
//   (bench/worker-versioning.ts) but is not the rule: PINNED leases would need each build's workers
//   for the months they run, and AUTO_UPGRADE replays old histories on new code, i.e. still needs
//   patched().
export { hostPing } from './host-ping.workflow.js';
export { accountOpening } from './account-opening.workflow.js';
export { hostAccountOperation } from './host-account.workflow.js';
export { hostOnboarding } from './host-onboarding.workflow.js';
export { hostOnboardingBatch } from './host-onboarding-batch.workflow.js';
export { hostRecheck } from './host-recheck.workflow.js';
export { hostLock } from './host-lock.workflow.js';
export { hostChangeLock } from './host-change-lock.workflow.js';
export { allocation } from './allocation.workflow.js';
export { lease } from './lease.workflow.js';
export { reclaim } from './reclaim.workflow.js';
export { sshKeyRevoke } from './ssh-key-revoke.workflow.js';
export { userRegistration } from './user-registration.workflow.js';
export { roleGrant } from './role-grant.workflow.js';
export { statusReconciler } from './status-reconciler.workflow.js';
export * from './audit-archive.workflow.js';
export { sshKeyAdd } from './ssh-key-add.workflow.js';
export { hostUserLookup } from './host-user-lookup.workflow.js';
export { gatewaySync } from './gateway-sync.workflow.js';
export { securityAlerts } from './security-alerts.workflow.js';
export { recordingRetention } from './recording-retention.workflow.js';
