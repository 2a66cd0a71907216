// Messages of the registration and role-grant lifecycles. Every one goes through the notification
// center (catalogue events registration.* / role_grant.*): templates in both languages, every channel
// the recipient subscribes to, the send log, one message per (event key, recipient, channel). In the
// token mails (verification, resubmission, activation) the token is a secret variable, issued inside
// this activity only when the mail really goes out, rendered into the message at send time and
// stored as `<redacted>`, so it is never in the send log, the database or workflow history.
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Transporter } from 'nodemailer';
import { DepartmentSchema, RegistrationSchema, RoleGrantSchema, UserSchema } from '../../db/entities/index.js';
import { issueRegistrationToken } from '../../db/registration-tokens.js';
import { issuePasswordToken } from '../../api/routes/auth/password-tokens.js';
import type { Logger } from '../../config/logger.js';
import { createEmitter, type NotifyDeps, type NotifyResult } from './notify.activities.js';
import type { EventName } from './events.js';

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

/** An emit's outcome in the shape these activities have always returned. */
const fromEmit = (r: NotifyResult): MailResult => ({ sent: r.sent ?? 0, skipped: r.suppressed ?? 0, duplicate: r.deduplicated ?? 0 });

export type RegistrationReviewEvent = 'department-review' | 'department-reminder' | 'role-approval' | 'role-reminder';
export type RegistrationApplicantEvent = 'rejected' | 'expired' | 'verified';

/** The workflow's names for the reviewer notices (activity input, in history) → catalogue events. */
const REVIEW_EVENTS = {
  'department-review': 'registration.department_review',
  'department-reminder': 'registration.department_reminder',
  'role-approval': 'registration.role_approval',
  'role-reminder': 'registration.role_reminder',
} as const satisfies Record<RegistrationReviewEvent, EventName>;

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

  /**
   * Tells the reviewers of the current step that a registration waits for them (or reminds them):
   * events registration.department_review / _reminder (the department's admins) and
   * registration.role_approval / _reminder (whoever's roles grant registration.approve_roles; roles
   * are data), each reviewer on email + inbox and every channel subscribed to the event. The message
   * links to the console's review page (sign-in required); nothing in it is secret. Keys as before
   * the center (`user-registration/<id>/<event>/<round>`), so a notice sent by the earlier path is
   * deduplicated, not repeated, after an upgrade.
   */
  async function notifyRegistrationReviewers(input: { registrationId: string; event: RegistrationReviewEvent; round: number }): Promise<MailResult> {
    const em = deps.em.fork();
    const reg = await em.findOneOrFail(RegistrationSchema, { id: input.registrationId });
    const department = input.event.startsWith('department');
    const admins = department ? ((reg.departmentId ? await em.findOne(DepartmentSchema, { id: reg.departmentId }) : null)?.admins ?? []) : [];
    // Nobody reviews their own registration: an account with the applicant's address is not told either.
    const self = (await em.getConnection().execute<Array<{ id: string }>>('select "id" from "users" where lower("email") = ?', [reg.email.toLowerCase()])).map((u) => u.id);
    const r = await emit({
      event: REVIEW_EVENTS[input.event],
      key: `user-registration/${reg.id}/${input.event}/${input.round}`,
      to: department ? { userIds: admins, exceptUserIds: self } : { permission: 'registration.approve_roles', exceptUserIds: self },
      data: { name: reg.fullName ?? reg.email, email: reg.email, roles: reg.requestedRoles.join(', ') || '-', reason: reg.reason ?? '-', registrationId: reg.id, expiresAt: reg.deadlineAt ? reg.deadlineAt.getTime() : '' },
    });
    return fromEmit(r);
  }

  /**
   * Tells the applicant that the registration was rejected or expired (or, `verified`, that it is
   * under review): events registration.rejected / expired / verified to the registration's address
   * (not a user yet: email only), transactional (the answer to their own request, no opt-out).
   */
  async function notifyRegistrationApplicant(input: { registrationId: string; event: RegistrationApplicantEvent }): Promise<MailResult> {
    const reg = await load(input.registrationId);
    const r = await emit({
      event: `registration.${input.event}`,
      key: `user-registration/${reg.id}/${input.event}`,
      to: { emails: [reg.email] },
      data: { name: reg.fullName ?? reg.email, registrationId: reg.id, ...(input.event === 'rejected' ? { reason: reg.roleComment ?? reg.departmentComment ?? '-' } : {}) },
    });
    return fromEmit(r);
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
