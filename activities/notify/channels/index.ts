import type { Transporter } from 'nodemailer';
import type { NotifyChannel } from '../../../db/entities/index.js';
import type { ChannelSender } from './channel.js';
import { emailSender } from './email.js';
import { webhookSender } from './webhook.js';
import { slackSender } from './slack.js';
import { dingtalkSender, feishuSender, wecomSender } from './robots.js';
import { unconfiguredSms } from './sms.js';

/** Every channel's sender. Email only when SMTP is configured; inbox needs none (it is the database). */
export function createSenders(deps: { mailer: Transporter | null; mailFrom: string }): Partial<Record<NotifyChannel, ChannelSender>> {
  return {
    ...(deps.mailer ? { email: emailSender(deps.mailer, deps.mailFrom) } : {}),
    webhook: webhookSender(),
    slack: slackSender(),
    dingtalk: dingtalkSender(),
    wecom: wecomSender(),
    feishu: feishuSender(),
    sms: unconfiguredSms,
  };
}
