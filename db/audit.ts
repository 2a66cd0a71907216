// The audit service (db/audit/): kept at this path so every `recordAudit(em, …)` caller keeps working.
export { recordAudit, appendAudit, changes, redactSecrets, type AuditInput } from './audit/service.js';
export { auditScope, type AuditActor } from './audit/context.js';
