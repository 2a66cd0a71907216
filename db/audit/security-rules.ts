// Security alert rules (seed 001 §7.4) → security_events rows, visible at GET /api/v1/security-events.
// Delivery (mail, webhooks) belongs to the notifications issue; until then rows are the alert.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AuditEventSchema, LoginEventSchema, UserSchema, type SecurityEventKind } from '../entities/index.js';
import type { AuditActor } from './context.js';

export interface SecurityRuleSettings {
  /** login_failures: this many failed logins of one account within the window. */
  loginFailureThreshold: number;
  loginFailureWindowMinutes: number;
  /** repeated_forbidden: this many 403 answers to one actor within the window. */
  forbiddenThreshold: number;
  forbiddenWindowMinutes: number;
  /** off_hours_access: working hours `HH:MM-HH:MM` in `workTimezone`; null turns the rule off. */
  workHours: { start: number; end: number } | null;
  workTimezone: string;
}

export const DEFAULT_SECURITY_RULES: SecurityRuleSettings = {
  loginFailureThreshold: 5,
  loginFailureWindowMinutes: 15,
  forbiddenThreshold: 5,
  forbiddenWindowMinutes: 10,
  workHours: null,
  workTimezone: 'UTC',
};

/** The rules' settings from the environment (SECURITY_* variables). */
export function securityRulesFromEnv(e: { SECURITY_WORK_HOURS?: string; SECURITY_WORK_TIMEZONE: string; SECURITY_LOGIN_FAILURE_THRESHOLD: number; SECURITY_FORBIDDEN_THRESHOLD: number }): SecurityRuleSettings {
  return { ...DEFAULT_SECURITY_RULES, workHours: parseWorkHours(e.SECURITY_WORK_HOURS), workTimezone: e.SECURITY_WORK_TIMEZONE, loginFailureThreshold: e.SECURITY_LOGIN_FAILURE_THRESHOLD, forbiddenThreshold: e.SECURITY_FORBIDDEN_THRESHOLD };
}

/** `08:00-20:00` → minutes of the day; throws naming the value when malformed. */
export function parseWorkHours(s: string | undefined): SecurityRuleSettings['workHours'] {
  if (!s) return null;
  const m = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(s);
  if (!m) throw new Error(`work hours must be HH:MM-HH:MM, got ${s}`);
  return { start: Number(m[1]) * 60 + Number(m[2]), end: Number(m[3]) * 60 + Number(m[4]) };
}

/** Minutes since local midnight in `tz`. */
function localMinutes(at: Date, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const h = Number(parts.find((p) => p.type === 'hour')?.value);
  const min = Number(parts.find((p) => p.type === 'minute')?.value);
  return h * 60 + min;
}

export function outsideHours(at: Date, s: SecurityRuleSettings): boolean {
  if (!s.workHours) return false;
  const t = localMinutes(at, s.workTimezone);
  const { start, end } = s.workHours;
  return start <= end ? t < start || t >= end : t < start && t >= end;
}

const SEVERITY: Record<SecurityEventKind, 'low' | 'medium' | 'high'> = {
  login_failures: 'high',
  new_ip_login: 'medium',
  off_hours_access: 'low',
  refresh_token_reuse: 'high',
  repeated_forbidden: 'medium',
};

/** Inserts the event once per dedup key (the unique index makes a repeat a no-op). */
export async function raiseSecurityEvent(em: SqlEntityManager, e: { kind: SecurityEventKind; dedupKey: string; at: Date; userId?: string | null; username?: string | null; ip?: string | null; detail?: Record<string, unknown> }): Promise<boolean> {
  const res = await em.getConnection().execute(
    `insert into "security_events" ("id", "at", "kind", "severity", "user_id", "username", "ip", "dedup_key", "detail") values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?, ?) on conflict ("dedup_key") do nothing`,
    [e.at, e.kind, SEVERITY[e.kind], e.userId ?? null, e.username?.slice(0, 64) ?? null, e.ip?.slice(0, 64) ?? null, `${e.kind}:${e.dedupKey}`.slice(0, 300), JSON.stringify(e.detail ?? {})],
    'run',
  );
  return ((res as { affectedRows?: number }).affectedRows ?? 0) > 0;
}

/** Failed attempts: wrong password or code, and attempts refused while locked. */
const FAILED_LOGIN = ['login_failure', 'mfa_failure', 'login_locked'] as const;

const windowKey = (at: Date, minutes: number) => Math.floor(at.getTime() / (minutes * 60_000));

/** Runs the login rules for one just-recorded login event. */
export async function evaluateLoginRules(
  em: SqlEntityManager,
  s: SecurityRuleSettings,
  e: { kind: string; userId?: string | null; username?: string | null; ip?: string | null; at: Date; id?: string },
): Promise<void> {
  const fork = em.fork();
  if (FAILED_LOGIN.includes(e.kind as (typeof FAILED_LOGIN)[number]) && e.username) {
    const since = new Date(e.at.getTime() - s.loginFailureWindowMinutes * 60_000);
    const n = await fork.count(LoginEventSchema, { kind: { $in: [...FAILED_LOGIN] }, username: e.username, createdAt: { $gte: since, $lte: e.at } });
    if (n >= s.loginFailureThreshold) {
      // Attempts refused while locked carry no user id: resolve it from the username.
      const userId = e.userId ?? (await fork.findOne(UserSchema, { username: e.username }, { fields: ['id'] }))?.id ?? null;
      await raiseSecurityEvent(fork, { kind: 'login_failures', dedupKey: `${e.username.toLowerCase()}:${windowKey(e.at, s.loginFailureWindowMinutes)}`, at: e.at, userId, username: e.username, ip: e.ip, detail: { failures: n, window_minutes: s.loginFailureWindowMinutes } });
    }
  }
  if (e.kind === 'refresh_reuse') {
    await raiseSecurityEvent(fork, { kind: 'refresh_token_reuse', dedupKey: `${e.userId ?? e.username ?? 'unknown'}:${e.at.getTime()}`, at: e.at, userId: e.userId, username: e.username, ip: e.ip, detail: { action: 'all sessions of the family revoked' } });
  }
  if (e.kind === 'login_success' && e.userId) {
    if (e.ip) {
      const seen = await fork.count(LoginEventSchema, { kind: 'login_success', userId: e.userId, ip: e.ip, createdAt: { $lt: e.at } });
      const before = seen === 0 ? await fork.count(LoginEventSchema, { kind: 'login_success', userId: e.userId, createdAt: { $lt: e.at } }) : 0;
      // The first login ever is from a new address by definition: alert only once the user has a history.
      if (seen === 0 && before > 0) {
        await raiseSecurityEvent(fork, { kind: 'new_ip_login', dedupKey: `${e.userId}:${e.ip}`, at: e.at, userId: e.userId, username: e.username, ip: e.ip, detail: { previous_logins: before } });
      }
    }
    if (outsideHours(e.at, s)) {
      await raiseSecurityEvent(fork, { kind: 'off_hours_access', dedupKey: `${e.userId}:${e.at.getTime()}`, at: e.at, userId: e.userId, username: e.username, ip: e.ip, detail: { timezone: s.workTimezone, local_minutes: localMinutes(e.at, s.workTimezone) } });
    }
  }
}

/** repeated_forbidden: counted from the audit trail's refused requests of this actor. */
export async function evaluateForbiddenRule(em: SqlEntityManager, s: SecurityRuleSettings, actor: AuditActor, at: Date): Promise<void> {
  const fork = em.fork();
  const since = new Date(at.getTime() - s.forbiddenWindowMinutes * 60_000);
  const who = actor.actorId ? { actorId: actor.actorId } : { actorType: 'anonymous' as const, ip: actor.ip ?? null };
  const n = await fork.count(AuditEventSchema, { ...who, result: 'failure', reason: { $like: '403%' }, at: { $gte: since } });
  if (n >= s.forbiddenThreshold) {
    await raiseSecurityEvent(fork, { kind: 'repeated_forbidden', dedupKey: `${actor.actorId ?? actor.ip}:${windowKey(at, s.forbiddenWindowMinutes)}`, at, userId: actor.actorType === 'user' ? actor.actorId : null, username: actor.actor, ip: actor.ip, detail: { forbidden: n, window_minutes: s.forbiddenWindowMinutes, actor_type: actor.actorType, actor_id: actor.actorId } });
  }
}
