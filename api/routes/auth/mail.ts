import type { IdentityDeps } from '../../deps.js';
import type { Logger } from '../../../config/logger.js';

/**
 * Identity mail (reset links, email codes) goes straight to the SMTP transport: these messages
 * carry secrets, so they are not stored in the notifications table the notify activity keeps.
 * Sent without awaiting by callers that must answer the same whether or not an account exists.
 */
export async function sendIdentityMail(d: Pick<IdentityDeps, 'mailer' | 'mailFrom'>, logger: Logger, msg: { to: string; subject: string; text: string; kind: string }): Promise<boolean> {
  if (!d.mailer) {
    logger.warn({ kind: msg.kind }, 'identity mail not sent: SMTP_URL is not configured');
    return false;
  }
  try {
    await d.mailer.sendMail({ from: d.mailFrom, to: msg.to, subject: msg.subject, text: msg.text });
    return true;
  } catch (err) {
    logger.error({ kind: msg.kind, err: (err as Error).message }, 'identity mail failed');
    return false;
  }
}
