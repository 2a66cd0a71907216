import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Transporter } from 'nodemailer';
import { NotificationSchema, UserSchema } from '../../db/entities/index.js';
import type { Logger } from '../../config/logger.js';

export interface NotifyInput {
  /** Business key of the event, e.g. `account-opening/<id>/expired`: with recipient and channel, exactly-once. */
  eventKey: string;
  userId?: string;
  email?: string;
  /** Every active user with this role and an email address (e.g. operational alerts to admins). */
  role?: 'admin' | 'operator';
  subject: string;
  body: string;
}

export interface NotifyResult {
  status: 'sent' | 'skipped' | 'duplicate';
  detail?: string;
}

export interface NotifyDeps {
  em: SqlEntityManager;
  logger: Logger;
  /** nodemailer transport; null when SMTP_URL is not configured (notifications are recorded as skipped). */
  mailer: Transporter | null;
  mailFrom: string;
}

/** Notification channels behind one activity. Email now; Slack and webhooks arrive with the notifications issue. */
export function createNotifyActivities(deps: NotifyDeps) {
  // A plain function, not a method: Temporal calls activities unbound, so `this` is undefined there.
  async function notify(input: NotifyInput): Promise<NotifyResult> {
      if (input.role) {
        const users = await deps.em.fork().find(UserSchema, { email: { $ne: null }, disabledAt: null });
        const targets = users.filter((u) => u.roles.includes(input.role!));
        const results = [];
        for (const u of targets) results.push(await notify({ ...input, role: undefined, userId: u.id }));
        if (results.some((r) => r.status === 'sent')) return { status: 'sent' };
        return { status: results.length ? results[0]!.status : 'skipped', detail: results.length ? undefined : `no ${input.role} has an email address` };
      }
      const em = deps.em.fork();
      let to = input.email;
      if (!to && input.userId) to = (await em.findOne(UserSchema, { id: input.userId }))?.email ?? undefined;
      const recipient = to ?? `user:${input.userId ?? 'unknown'}`;
      let row = await em.findOne(NotificationSchema, { eventKey: input.eventKey, recipient, channel: 'email' });
      if (row && (row.status === 'sent' || row.status === 'skipped')) return { status: 'duplicate' };
      if (!row) {
        row = em.create(NotificationSchema, { eventKey: input.eventKey, recipient, channel: 'email', subject: input.subject, body: input.body });
        try {
          await em.flush();
        } catch (err) {
          if (err instanceof UniqueConstraintViolationException) return { status: 'duplicate' };
          throw err;
        }
      }
      if (!to || !deps.mailer) {
        row.status = 'skipped';
        row.detail = !to ? 'recipient has no email address' : 'no email channel configured (SMTP_URL unset)';
        await em.flush();
        return { status: 'skipped', detail: row.detail };
      }
      // A stable Message-ID lets mail systems drop the duplicate in the rare case of a crash
      // between sending and recording the send.
      await deps.mailer.sendMail({
        from: deps.mailFrom,
        to,
        subject: input.subject,
        text: input.body,
        messageId: `<${input.eventKey.replace(/[^A-Za-z0-9.-]/g, '.')}@hostflow>`,
      });
      row.status = 'sent';
      row.sentAt = new Date();
      await em.flush();
      deps.logger.info({ eventKey: input.eventKey }, 'notification sent');
      return { status: 'sent' };
  }
  return { notify };
}
