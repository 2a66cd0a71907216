import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Transporter } from 'nodemailer';
import { NotificationSchema, RoleSchema, UserSchema, type NotifyChannel } from '../../db/entities/index.js';
import { rolesInheriting } from '../../api/authz/principal.js';
import type { Logger } from '../../config/logger.js';
import type { Vault } from '../../db/vault.js';
import type { EmitInput } from './events.js';
import { createCenter, type EmitOptions, type EmitResult, type NotifySettings } from './center.js';
import { createSenders } from './channels/index.js';
import type { ChannelSender } from './channels/channel.js';

/**
 * The shape lifecycles used before the event catalogue: a pre-rendered subject and body, email
 * only. Still accepted so an activity already scheduled by a running workflow (its input is in
 * history) completes after an upgrade; new code emits catalogue events (EmitInput).
 */
export interface LegacyNotifyInput {
  eventKey: string;
  userId?: string;
  email?: string;
  role?: 'admin' | 'operator';
  subject: string;
  body: string;
}

export type NotifyInput = EmitInput | LegacyNotifyInput;

export interface NotifyResult extends Partial<EmitResult> {
  status: 'sent' | 'skipped' | 'duplicate' | 'suppressed' | 'failed';
  detail?: string;
}

export interface NotifyDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  /** nodemailer transport; null when SMTP_URL is not configured (email messages are recorded as suppressed). */
  mailer: Transporter | null;
  mailFrom: string;
  publicBaseUrl?: string | (() => string);
  notifySettings?: Partial<NotifySettings>;
  /** Wall time per stage of each emit (benchmarks). */
  onStage?: (stage: string, ms: number) => void;
  /** Channel senders replacing the defaults (tests, benchmarks). */
  senders?: Partial<Record<NotifyChannel, ChannelSender>>;
}

const isEmit = (i: NotifyInput): i is EmitInput => 'event' in i;

/** Summary status of one emit: sent if anything was sent, else the most telling outcome. */
function summarize(r: EmitResult): NotifyResult {
  const status = r.sent ? 'sent' : r.failed ? 'failed' : r.deduplicated && !r.suppressed ? 'duplicate' : r.suppressed ? 'suppressed' : r.messages ? 'duplicate' : 'skipped';
  return { status, ...r, ...(r.messages ? {} : { detail: 'no recipients' }) };
}

/** The notification center behind one activity: `notify` (every channel, exactly once per message key). */
export function createNotifyActivities(deps: NotifyDeps) {
  const center = createCenter({ ...deps, senders: { ...createSenders(deps), ...deps.senders } });

  /** Emits an event; called inside other activities too (lease reminders), where a failure retries that activity. */
  async function emit(input: EmitInput): Promise<NotifyResult> {
    const r = await center.emit(input);
    // Deliveries that can still succeed: fail the activity so Temporal retries it with backoff;
    // messages already sent are deduplicated on the retry.
    if (r.retrying) throw new Error(`${r.retrying} message(s) of ${input.key} failed and will be retried (see the send log)`);
    return summarize(r);
  }

  // A plain function, not a method: Temporal calls activities unbound, so `this` is undefined there.
  async function notify(input: NotifyInput): Promise<NotifyResult> {
    if (isEmit(input)) return emit(input);
    return legacy(input);
  }

  async function legacy(input: LegacyNotifyInput): Promise<NotifyResult> {
    if (input.role) {
      const users = await deps.em.fork().find(UserSchema, { email: { $ne: null }, disabledAt: null });
      const named = rolesInheriting(await deps.em.fork().find(RoleSchema, {}), [input.role]);
      const targets = users.filter((u) => u.roles.some((r) => named.has(r)));
      const results = [];
      for (const u of targets) results.push(await legacy({ ...input, role: undefined, userId: u.id }));
      if (results.some((r) => r.status === 'sent')) return { status: 'sent' };
      return { status: results.length ? results[0]!.status : 'skipped', detail: results.length ? undefined : `no ${input.role} has an email address` };
    }
    const em = deps.em.fork();
    let to = input.email;
    if (!to && input.userId) to = (await em.findOne(UserSchema, { id: input.userId }))?.email ?? undefined;
    const recipient = to ?? `user:${input.userId ?? 'unknown'}`;
    let row = await em.findOne(NotificationSchema, { eventKey: input.eventKey, recipient, channel: 'email' });
    if (row && (row.status === 'sent' || row.status === 'suppressed')) return { status: 'duplicate' };
    if (!row) {
      row = em.create(NotificationSchema, { eventKey: input.eventKey, recipient, channel: 'email', subject: input.subject, body: input.body, userId: input.userId ?? null });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) return { status: 'duplicate' };
        throw err;
      }
    }
    if (!to || !deps.mailer) {
      row.status = 'suppressed';
      row.detail = !to ? 'recipient has no email address' : 'no email channel configured (SMTP_URL unset)';
      await em.flush();
      return { status: 'suppressed', detail: row.detail };
    }
    row.attempts += 1;
    await deps.mailer.sendMail({ from: deps.mailFrom, to, subject: input.subject, text: input.body, messageId: `<${input.eventKey.replace(/[^A-Za-z0-9.-]/g, '.')}@hostflow>` });
    row.status = 'sent';
    row.sentAt = new Date();
    await em.flush();
    return { status: 'sent' };
  }

  return { notify };
}

/** The emit path for other activities (not registered as an activity itself). */
export function createEmitter(deps: NotifyDeps) {
  const center = createCenter({ ...deps, senders: { ...createSenders(deps), ...deps.senders } });
  return async (input: EmitInput, opts: EmitOptions = {}): Promise<NotifyResult> => {
    const r = await center.emit(input, opts);
    if (r.retrying) throw new Error(`${r.retrying} message(s) of ${input.key} failed and will be retried (see the send log)`);
    return summarize(r);
  };
}
