// IM group robots, signed exactly as each service documents it:
// - DingTalk (open.dingtalk.com, "自定义机器人安全设置 / 加签"): timestamp = ms; sign =
//   urlEncode(base64(HmacSHA256(key = secret, data = "<timestamp>\n<secret>"))); appended to the
//   webhook URL as &timestamp=&sign=. Body `{ msgtype: "markdown", markdown: { title, text } }`.
//   Success: `{ errcode: 0 }`; 310000 = signature / timestamp refused.
// - Feishu / Lark (open.feishu.cn, "自定义机器人 / 签名校验"): timestamp = seconds; sign =
//   base64(HmacSHA256(key = "<timestamp>\n<secret>", data = "")) — the string is the key — sent
//   in the body next to the message: `{ timestamp, sign, msg_type: "interactive", card }`.
//   Success: `{ code: 0 }`; 19021 = signature refused.
// - WeCom (developer.work.weixin.qq.com, "群机器人配置说明"): no signature; the robot key in the
//   URL (`…/webhook/send?key=KEY`) is the secret. Body `{ msgtype: "markdown", markdown: { content } }`.
//   Success: `{ errcode: 0 }`.
// A refused signature is retried per policy (a secret being rotated), then recorded failed.
import { createHmac } from 'node:crypto';
import { ChannelError, postJson, type ChannelSender } from './channel.js';

export function dingtalkSign(secret: string, timestampMs: number): string {
  return encodeURIComponent(createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64'));
}

export function feishuSign(secret: string, timestampSec: number): string {
  return createHmac('sha256', `${timestampSec}\n${secret}`).update('').digest('base64');
}

const answer = (json: unknown, okField: 'errcode' | 'code') => {
  const j = (json ?? {}) as Record<string, unknown>;
  if (j[okField] === 0) return { response: JSON.stringify(j).slice(0, 300) };
  throw new ChannelError(`robot refused: ${JSON.stringify(j).slice(0, 300)}`, true);
};

const withLinks = (msg: { body: string; actions?: Array<{ label: string; url: string }> }) =>
  msg.body + (msg.actions?.length ? '\n\n' + msg.actions.map((a) => `[${a.label}](${a.url})`).join('  ') : '');

export function dingtalkSender(clock: () => Date = () => new Date()): ChannelSender {
  return {
    channel: 'dingtalk',
    async send(msg) {
      const ts = clock().getTime();
      const secret = msg.secrets?.[0];
      const url = secret ? `${msg.to}${msg.to.includes('?') ? '&' : '?'}timestamp=${ts}&sign=${dingtalkSign(secret, ts)}` : msg.to;
      const res = await postJson(url, { msgtype: 'markdown', markdown: { title: msg.subject, text: `### ${msg.subject}\n\n${withLinks(msg)}` } });
      return answer(res.json, 'errcode');
    },
  };
}

export function feishuSender(clock: () => Date = () => new Date()): ChannelSender {
  return {
    channel: 'feishu',
    async send(msg) {
      const ts = Math.floor(clock().getTime() / 1000);
      const secret = msg.secrets?.[0];
      const card = { header: { title: { tag: 'plain_text', content: msg.subject } }, elements: [{ tag: 'div', text: { tag: 'lark_md', content: withLinks(msg) } }] };
      const res = await postJson(msg.to, { ...(secret ? { timestamp: String(ts), sign: feishuSign(secret, ts) } : {}), msg_type: 'interactive', card });
      return answer(res.json, 'code');
    },
  };
}

export function wecomSender(): ChannelSender {
  return {
    channel: 'wecom',
    async send(msg) {
      const key = msg.secrets?.[0];
      const url = key ? `${msg.to}${msg.to.includes('?') ? '&' : '?'}key=${encodeURIComponent(key)}` : msg.to;
      const res = await postJson(url, { msgtype: 'markdown', markdown: { content: `**${msg.subject}**\n${withLinks(msg)}` } });
      return answer(res.json, 'errcode');
    },
  };
}
