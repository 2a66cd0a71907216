// Email through nodemailer (a pooled SMTP transport: config/mailer.ts). HTML + text parts,
// List-Unsubscribe (+ One-Click POST, RFC 8058) with the signed link, and a Message-ID derived from
// the message key: if the worker dies after the server accepted the mail and before the send was
// recorded, the retry sends the same Message-ID, which lets the receiving side drop the duplicate
// (SMTP itself has no idempotency).
import type { Transporter } from 'nodemailer';
import { escapeHtml } from '../render.js';
import { ChannelError, type ChannelSender } from './channel.js';

export function emailSender(mailer: Transporter | null, from: string): ChannelSender {
  return {
    channel: 'email',
    async send(msg) {
      if (!mailer) throw new ChannelError('no email channel configured (SMTP_URL unset)', false);
      const actionsText = msg.actions?.length ? '\n\n' + msg.actions.map((a) => `${a.label}: ${a.url}`).join('\n') : '';
      const actionsHtml = msg.actions?.length ? `<p>${msg.actions.map((a) => `<a href="${escapeHtml(a.url)}">${escapeHtml(a.label)}</a>`).join(' &nbsp; ')}</p>` : '';
      const unsubText = msg.unsubscribeUrl ? `\n\n--\nUnsubscribe: ${msg.unsubscribeUrl}` : '';
      const unsubHtml = msg.unsubscribeUrl ? `<hr><p style="font-size:small"><a href="${escapeHtml(msg.unsubscribeUrl)}">Unsubscribe</a></p>` : '';
      const html = msg.html ? msg.html.replace('</body>', `${actionsHtml}${unsubHtml}</body>`) : undefined;
      try {
        const info = await mailer.sendMail({
          from,
          to: msg.to,
          subject: msg.subject,
          text: msg.body + actionsText + unsubText,
          html,
          messageId: msg.messageId,
          ...(msg.unsubscribeUrl ? { list: { unsubscribe: msg.unsubscribeUrl }, headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } } : {}),
        });
        return { response: String(info.response ?? info.messageId).slice(0, 500) };
      } catch (err) {
        const e = err as { responseCode?: number; message: string };
        // 5xx SMTP replies are permanent (bad recipient, refused); everything else may pass later.
        throw new ChannelError(`SMTP: ${e.message}`, !(e.responseCode && e.responseCode >= 500 && e.responseCode < 600));
      }
    },
  };
}
