// Emails of the registration and role-grant lifecycles. The token mails (verification, resubmission,
// activation) and the role-grant messages go through the notification center (catalogue events
// registration.* / role_grant.*): the token is a secret variable, issued inside this activity only
// when the mail really goes out, rendered into the message at send time and stored as `<redacted>`,
// so it is never in the send log, the database or workflow history. The reviewer and applicant
// notices still use sendOnce (one row per (event key, recipient, channel), email only).
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Transporter } from 'nodemailer';
import { DepartmentSchema, NotificationSchema, RegistrationSchema, RoleGrantSchema, RoleSchema, UserSchema } from '../../db/entities/index.js';
import { resolveRoles } from '../../api/authz/principal.js';
import { issueRegistrationToken } from '../../db/registration-tokens.js';
import { issuePasswordToken } from '../../api/routes/auth/password-tokens.js';
import type { Logger } from '../../config/logger.js';
import { createEmitter, type NotifyDeps, type NotifyResult } from './notify.activities.js';

export interface RegistrationMailDeps extends NotifyDeps {
  em: SqlEntityManager;
  logger: Logger;
  mailer: Transporter | null;
  mailFrom: string;
  /** Where links in emails point (PUBLIC_BASE_URL). */
  publicBaseUrl?: string | (() => string);
}

export interface MailResult {
  sent: number;
  skipped: number;
  duplicate: number;
}

interface Mail {
  eventKey: string;
  to: string;
  subject: string;
  /** Called only when the mail is really going out (so a token is issued only then). */
  render: () => Promise<{ text: string; stored: string }>;
}

/** Sends one mail exactly once per (event key, recipient). */
export async function sendOnce(deps: RegistrationMailDeps, mail: Mail): Promise<'sent' | 'skipped' | 'duplicate'> {
  const em = deps.em.fork();
  let row = await em.findOne(NotificationSchema, { eventKey: mail.eventKey, recipient: mail.to, channel: 'email' });
  if (row && (row.status === 'sent' || row.status === 'suppressed')) return 'duplicate';
  if (!row) {
    row = em.create(NotificationSchema, { eventKey: mail.eventKey, recipient: mail.to, channel: 'email', subject: mail.subject, body: '(not rendered yet)' });
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) return 'duplicate';
      throw err;
    }
  }
  if (!deps.mailer) {
    row.status = 'suppressed';
    row.detail = 'no email channel configured (SMTP_URL unset)';
    row.body = '(not rendered: no email channel)';
    await em.flush();
    return 'skipped';
  }
  const { text, stored } = await mail.render();
  row.body = stored;
  await em.flush();
  // A retry after a crash between sending and recording re-renders (a fresh link for token mails),
  // so the Message-ID carries the row's attempt time: the newest mail is the one whose link works.
  await deps.mailer.sendMail({
    from: deps.mailFrom,
    to: mail.to,
    subject: mail.subject,
    text,
    messageId: `<${mail.eventKey.replace(/[^A-Za-z0-9.-]/g, '.')}.${Date.now()}@hostflow>`,
  });
  row.status = 'sent';
  row.sentAt = new Date();
  await em.flush();
  deps.logger.info({ eventKey: mail.eventKey }, 'notification sent');
  return 'sent';
}

const tally = (results: Array<'sent' | 'skipped' | 'duplicate'>): MailResult => ({
  sent: results.filter((r) => r === 'sent').length,
  skipped: results.filter((r) => r === 'skipped').length,
  duplicate: results.filter((r) => r === 'duplicate').length,
});

const plain = (text: string) => ({ text, stored: text });

/** An emit's outcome in the shape these activities have always returned. */
const fromEmit = (r: NotifyResult): MailResult => ({ sent: r.sent ?? 0, skipped: r.suppressed ?? 0, duplicate: r.deduplicated ?? 0 });

export type RegistrationReviewEvent = 'department-review' | 'department-reminder' | 'role-approval' | 'role-reminder';
export type RegistrationApplicantEvent = 'rejected' | 'expired' | 'verified';

export function createRegistrationMailActivities(deps: RegistrationMailDeps) {
  const base = ((typeof deps.publicBaseUrl === 'function' ? deps.publicBaseUrl() : deps.publicBaseUrl) || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  const load = (id: string) => deps.em.fork().findOneOrFail(RegistrationSchema, { id });
  const emit = createEmitter(deps);

  /**
   * The verification link (after submit) or the resubmission link (after "return for changes"),
   * through the notification center: the token is a secret variable, issued only when the mail
   * really goes out and rendered into it then; the send log keeps the render with `<redacted>`.
   */
  async function sendRegistrationLinkMail(input: { registrationId: string; purpose: 'verify' | 'resubmit'; round: number; ttlMs: number }): Promise<MailResult> {
    const reg = await load(input.registrationId);
    const verify = input.purpose === 'verify';
    const expiresAt = Date.now() + input.ttlMs;
    const r = await emit(
      {
        event: verify ? 'registration.verify' : 'registration.resubmit',
        key: `user-registration/${reg.id}/${input.purpose}/${input.round}`,
        to: { emails: [reg.email] },
        data: { name: reg.fullName ?? '', apiBase: base, registrationId: reg.id, comment: reg.departmentComment ?? '', expiresAt },
      },
      {
        secrets: async () => {
          const { token } = await issueRegistrationToken(deps.em, { registrationId: reg.id, purpose: input.purpose, ttlMs: Math.max(expiresAt - Date.now(), 60_000) });
          return { token, link: verify ? `${base}/register/verify?token=${token}` : `${base}/register/${reg.id}/edit?token=${token}` };
        },
      },
    );
    return fromEmit(r);
  }

  /** Tells the reviewers of the current step that a registration waits for them (or reminds them). */
  async function notifyRegistrationReviewers(input: { registrationId: string; event: RegistrationReviewEvent; round: number }): Promise<MailResult> {
    const em = deps.em.fork();
    const reg = await em.findOneOrFail(RegistrationSchema, { id: input.registrationId });
    let reviewers: Array<{ email?: string | null }>;
    if (input.event.startsWith('department')) {
      const dept = reg.departmentId ? await em.findOne(DepartmentSchema, { id: reg.departmentId }) : null;
      reviewers = dept?.admins.length ? await em.find(UserSchema, { id: { $in: dept.admins }, disabledAt: null }) : [];
    } else {
      // Role approvers: whoever's roles grant registration.approve_roles (roles are data).
      const roles = resolveRoles(await em.find(RoleSchema, {}), new Map());
      const approves = (names: string[]) => names.some((n) => roles.get(n)?.permissions.has('registration.approve_roles'));
      reviewers = (await em.find(UserSchema, { disabledAt: null })).filter((u) => approves(u.roles));
    }
    const emails = [...new Set(reviewers.map((u) => u.email?.toLowerCase()).filter((e): e is string => !!e && e !== reg.email))];
    const reminder = input.event.endsWith('reminder');
    const stage = input.event.startsWith('department') ? 'department review' : 'role approval';
    const subject = `${reminder ? 'Reminder: ' : ''}registration of ${reg.fullName ?? reg.email} waits for ${stage}`;
    const deadline = reg.deadlineAt ? ` It expires at ${reg.deadlineAt.toISOString()}.` : '';
    const text =
      `${reg.fullName ?? ''} <${reg.email}> asks for the roles ${reg.requestedRoles.join(', ')}.\nReason: ${reg.reason ?? '-'}\n\n` +
      `Review it: ${base}/registrations/${reg.id} (API: GET ${base}/api/v1/registrations/${reg.id}).${deadline}`;
    const results: Array<'sent' | 'skipped' | 'duplicate'> = [];
    for (const to of emails) {
      results.push(await sendOnce(deps, { eventKey: `user-registration/${reg.id}/${input.event}/${input.round}`, to, subject, render: async () => plain(text) }));
    }
    return tally(results);
  }

  /** Tells the applicant that the registration was rejected or expired. */
  async function notifyRegistrationApplicant(input: { registrationId: string; event: RegistrationApplicantEvent }): Promise<MailResult> {
    const reg = await load(input.registrationId);
    const text =
      input.event === 'rejected'
        ? `Your Hostflow registration was rejected.\nReason: ${reg.roleComment ?? reg.departmentComment ?? '-'}`
        : input.event === 'expired'
          ? 'Your Hostflow registration was not completed in time and has expired. You can register again.'
          : 'Your email address is confirmed; your registration now waits for the review of your department.';
    const subject = input.event === 'rejected' ? 'Your Hostflow registration was rejected' : input.event === 'expired' ? 'Your Hostflow registration expired' : 'Your Hostflow registration is under review';
    return tally([await sendOnce(deps, { eventKey: `user-registration/${reg.id}/${input.event}`, to: reg.email, subject, render: async () => plain(text) })]);
  }

  /** The activation email: a set-password link (single-use, 7 days) for the user created at activation; the token is a secret variable. */
  async function sendActivationMail(input: { registrationId: string }): Promise<MailResult> {
    const em = deps.em.fork();
    const reg = await em.findOneOrFail(RegistrationSchema, { id: input.registrationId });
    if (!reg.userId) throw new Error(`registration ${reg.id} has no user yet`);
    const user = await em.findOneOrFail(UserSchema, { id: reg.userId });
    const ttlMinutes = 7 * 24 * 60;
    const r = await emit(
      {
        event: 'registration.activation',
        key: `user-registration/${reg.id}/activation`,
        to: { emails: [reg.email] },
        data: { name: user.fullName ?? user.username, username: user.username, roles: user.roles.join(', ') || '(none)', expiresAt: Date.now() + ttlMinutes * 60_000 },
      },
      {
        secrets: async () => {
          const { token } = await issuePasswordToken(deps.em, { userId: user.id, purpose: 'activation', ttlMinutes });
          return { link: `${base}/set-password?token=${token}` };
        },
      },
    );
    return fromEmit(r);
  }

  /** Role-grant messages to the grantee (events role_grant.*): the reminder a day before the end (per end moment), and the end. */
  async function notifyRoleGrant(input: { grantId: string; event: 'reminder' | 'expired' | 'revoked'; untilMs: number }): Promise<MailResult> {
    const em = deps.em.fork();
    const grant = await em.findOneOrFail(RoleGrantSchema, { id: input.grantId });
    const key = input.event === 'reminder' ? `role-grant/${grant.id}/reminder/${input.untilMs}` : `role-grant/${grant.id}/${input.event}`;
    const r = await emit({ event: `role_grant.${input.event}`, key, to: { userIds: [grant.userId] }, data: { role: grant.role, until: input.untilMs, reason: grant.revokeReason ?? '-' } });
    return { sent: r.sent ?? 0, skipped: r.suppressed ?? 0, duplicate: r.deduplicated ?? 0 };
  }

  return { sendRegistrationLinkMail, notifyRegistrationReviewers, notifyRegistrationApplicant, sendActivationMail, notifyRoleGrant };
}
