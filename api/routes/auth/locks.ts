// Failed-login counters and locks, per account (lowercased username, existing or not) and per
// source IP, counted separately: failures within AUTH_LOCKOUT_MINUTES; at the threshold the
// subject is locked for AUTH_LOCKOUT_MINUTES.
import { randomUUID } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { LoginLockSchema } from '../../../db/entities/index.js';
import type { IdentityDeps } from '../../deps.js';

export type LockScope = 'account' | 'ip';
export const accountSubject = (username: string) => username.toLowerCase().slice(0, 64);

/** When the subject's lock ends, or null when it is not locked. */
export async function lockedUntil(d: Pick<IdentityDeps, 'clock'>, em: SqlEntityManager, scope: LockScope, subject: string): Promise<Date | null> {
  const row = await em.fork().findOne(LoginLockSchema, { scope, subject });
  return row?.lockedUntil && row.lockedUntil > d.clock() ? row.lockedUntil : null;
}

/** Counts one failure (atomically) and locks the subject at the threshold. */
export async function recordFailure(d: Pick<IdentityDeps, 'clock' | 'settings'>, em: SqlEntityManager, scope: LockScope, subject: string): Promise<{ failures: number; locked: boolean }> {
  const now = d.clock();
  const windowMs = d.settings.lockoutMinutes * 60_000;
  const windowStart = new Date(now.getTime() - windowMs);
  const threshold = scope === 'account' ? d.settings.lockoutThreshold : d.settings.ipLockoutThreshold;
  const rows = await em.getConnection().execute<Array<{ failures: number }>>(
    `insert into login_locks (id, scope, subject, failures, window_started_at, locked_until) values (?, ?, ?, 1, ?, null)
     on conflict (scope, subject) do update set
       failures = case when login_locks.window_started_at < ? then 1 else login_locks.failures + 1 end,
       window_started_at = case when login_locks.window_started_at < ? then excluded.window_started_at else login_locks.window_started_at end
     returning failures`,
    [randomUUID(), scope, subject, now, windowStart, windowStart],
  );
  const failures = Number(rows[0]?.failures ?? 1);
  if (failures >= threshold) {
    await em.getConnection().execute(`update login_locks set locked_until = ? where scope = ? and subject = ?`, [new Date(now.getTime() + windowMs), scope, subject]);
    return { failures, locked: true };
  }
  return { failures, locked: false };
}

/** Clears a subject's counter and lock (a successful login for accounts; an admin unlock). */
export async function clearLock(em: SqlEntityManager, scope: LockScope, subject: string): Promise<boolean> {
  const n = await em.fork().nativeDelete(LoginLockSchema, { scope, subject });
  return n > 0;
}
