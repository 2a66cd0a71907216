import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../../config/logger.js';
import { LoginEventSchema, type LoginEventKind } from '../../../db/entities/index.js';
import { DEFAULT_SECURITY_RULES, evaluateLoginRules, type SecurityRuleSettings } from '../../../db/audit/security-rules.js';

export interface LoginEventInput {
  kind: LoginEventKind;
  userId?: string | null;
  username?: string | null;
  sessionId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  reason?: string | null;
  securityEvent?: boolean;
  at: Date;
}

/** Appends a login event on its own fork, then runs the security alert rules over it (it must survive the caller's error) and logs it. Never holds a secret. */
export async function recordLoginEvent(d: { logger?: Logger; securityRules?: SecurityRuleSettings }, em: SqlEntityManager, e: LoginEventInput): Promise<void> {
  d.logger?.[e.securityEvent ? 'warn' : 'info']({ event: e.kind, userId: e.userId ?? undefined, username: e.username ?? undefined, sessionId: e.sessionId ?? undefined, ip: e.ip ?? undefined, reason: e.reason ?? undefined }, 'auth event');
  const fork = em.fork();
  fork.create(LoginEventSchema, {
    kind: e.kind,
    userId: e.userId ?? null,
    username: e.username?.slice(0, 64) ?? null,
    sessionId: e.sessionId ?? null,
    ip: e.ip?.slice(0, 64) ?? null,
    userAgent: e.userAgent?.slice(0, 255) ?? null,
    reason: e.reason ?? null,
    securityEvent: e.securityEvent ?? false,
    createdAt: e.at,
  });
  await fork.flush();
  // Alert rules (repeated failures, new IP, off-hours, refresh reuse) read the row just written.
  try {
    await evaluateLoginRules(em, d.securityRules ?? DEFAULT_SECURITY_RULES, e);
  } catch (err) {
    d.logger?.error({ err }, 'security rules failed');
  }
}
