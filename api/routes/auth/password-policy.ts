// The one password policy, used by every path that sets a password (change, reset, activation,
// admin reset, generated initial passwords, the CLI).
import { randomInt } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { PasswordHistorySchema, type User } from '../../../db/entities/index.js';
import type { PasswordClass } from '../../../config/auth.js';
import type { IdentityDeps } from '../../deps.js';
import { validationError } from '../../errors.js';

const CLASS_TESTS: Record<PasswordClass, { re: RegExp; label: string }> = {
  lower: { re: /\p{Ll}/u, label: 'a lowercase letter' },
  upper: { re: /\p{Lu}/u, label: 'an uppercase letter' },
  digit: { re: /\p{Nd}/u, label: 'a digit' },
  symbol: { re: /[^\p{L}\p{Nd}]/u, label: 'a symbol' },
};

export interface PolicyViolation {
  rule: 'min_length' | 'max_length' | 'character_classes' | 'not_username' | 'history';
  message: string;
}

/** Checks a candidate password; returns the first failed rule or null. */
export async function checkPasswordPolicy(
  d: Pick<IdentityDeps, 'settings' | 'hasher'>,
  em: SqlEntityManager,
  input: { password: string; username: string; userId?: string },
): Promise<PolicyViolation | null> {
  const policy = d.settings.password;
  const pw = input.password;
  if ([...pw].length < policy.minLength) return { rule: 'min_length', message: `must be at least ${policy.minLength} characters` };
  if (pw.length > 256) return { rule: 'max_length', message: 'must be at most 256 characters' };
  const missing = policy.classes.filter((c) => !CLASS_TESTS[c].re.test(pw));
  if (missing.length) return { rule: 'character_classes', message: `must contain ${missing.map((c) => CLASS_TESTS[c].label).join(', ')}` };
  const lower = pw.toLowerCase();
  const uname = input.username.toLowerCase();
  if (lower === uname || lower.includes(uname) || lower === [...uname].reverse().join('')) return { rule: 'not_username', message: 'must not contain the username' };
  if (input.userId && policy.history > 0) {
    const prev = await em.find(PasswordHistorySchema, { userId: input.userId }, { orderBy: { createdAt: 'desc' }, limit: policy.history });
    for (const h of prev) {
      if (await d.hasher.verify(pw, h.passwordHash)) return { rule: 'history', message: `must not be one of the last ${policy.history} passwords` };
    }
  }
  return null;
}

/** Throws 40001 naming the field and the failed rule. */
export async function assertPasswordPolicy(
  d: Pick<IdentityDeps, 'settings' | 'hasher'>,
  em: SqlEntityManager,
  input: { password: string; username: string; userId?: string; field: string },
): Promise<void> {
  const v = await checkPasswordPolicy(d, em, input);
  if (v) throw validationError([{ field: input.field, message: `${v.message} (password policy: ${v.rule})` }], `${input.field}: ${v.message} (password policy: ${v.rule})`);
}

/**
 * Sets a user's password (already policy-checked by the caller): argon2id hash, history row,
 * history pruned to the policy's N. Flushes with the caller's em.
 */
export async function applyPassword(
  d: Pick<IdentityDeps, 'settings' | 'hasher' | 'clock'>,
  em: SqlEntityManager,
  user: User,
  password: string,
  opts: { mustChange: boolean },
): Promise<void> {
  const hash = await d.hasher.hash(password);
  // Prune first (the new row is not in the table yet): keep N-1 older ones plus the new one.
  const keep = Math.max(d.settings.password.history, 1);
  const old = await em.find(PasswordHistorySchema, { userId: user.id }, { orderBy: { createdAt: 'desc', id: 'desc' }, offset: keep - 1 });
  for (const o of old) em.remove(o);
  user.passwordHash = hash;
  user.mustChangePassword = opts.mustChange;
  user.passwordChangedAt = d.clock();
  em.create(PasswordHistorySchema, { userId: user.id, passwordHash: hash, createdAt: d.clock() });
}

const GEN_SETS = ['abcdefghijkmnpqrstuvwxyz', 'ABCDEFGHJKLMNPQRSTUVWXYZ', '23456789', '-_.+=@%'];

/** A random initial password (CSPRNG) with every character class, longer than the policy minimum. */
export function generateInitialPassword(minLength = 8): string {
  const length = Math.max(20, minLength);
  const all = GEN_SETS.join('');
  const chars = GEN_SETS.map((set) => set[randomInt(set.length)]!);
  while (chars.length < length) chars.push(all[randomInt(all.length)]!);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}
