// SMS: the interface only. No SMS provider is reachable from here, so there is no sender to test
// against; a provider (Aliyun SMS, Tencent Cloud SMS, Twilio…) is one file implementing
// ChannelSender like this one, registered in channels/index.ts. Until then a message routed to
// `sms` is recorded as suppressed ("no SMS provider configured").
import { ChannelError, type ChannelSender } from './channel.js';

export const unconfiguredSms: ChannelSender = {
  channel: 'sms',
  async send() {
    throw new ChannelError('no SMS provider configured', false);
  },
};
