import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditActorType } from '../entities/index.js';

/** Who is acting, for audit rows written anywhere below a request or an activity. */
export interface AuditActor {
  actor: string;
  actorType: AuditActorType;
  actorId: string | null;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}

/**
 * Set by the API's audit middleware (per request, resolved lazily because authentication runs
 * after it) and by the audited executor (per activity): recordAudit fills what its caller left out.
 */
export const auditScope = new AsyncLocalStorage<{ actor(): AuditActor }>();
