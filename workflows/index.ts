// The workflow bundle entry: re-exports every workflow. Function names are workflow type names
// (part of the storage format): never rename one that may have running executions.
export { hostPing } from './host-ping.workflow.js';
export { accountOpening } from './account-opening.workflow.js';
export { hostAccountOperation } from './host-account.workflow.js';
export { hostOnboarding } from './host-onboarding.workflow.js';
export { hostOnboardingBatch } from './host-onboarding-batch.workflow.js';
export { hostRecheck } from './host-recheck.workflow.js';
export { hostLock } from './host-lock.workflow.js';
export { allocation } from './allocation.workflow.js';
export { lease } from './lease.workflow.js';
export { reclaim } from './reclaim.workflow.js';
export { sshKeyRevoke } from './ssh-key-revoke.workflow.js';
export { hostUserLookup } from './host-user-lookup.workflow.js';
