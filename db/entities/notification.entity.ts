import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * One notification to one recipient on one channel. The unique (event key, recipient, channel)
 * makes sending exactly-once: an activity retry finds the row and does not send again.
 */
export const NotificationSchema = defineEntity({
  name: 'Notification',
  tableName: 'notifications',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    eventKey: p.string().length(200),
    recipient: p.string().length(255),
    channel: p.enum(['email', 'slack', 'webhook'] as const),
    subject: p.string().length(300),
    body: p.text(),
    status: p.enum(['pending', 'sent', 'skipped', 'failed'] as const).default('pending'),
    detail: p.string().length(1000).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    sentAt: p.datetime().nullable(),
  },
  uniques: [{ properties: ['eventKey', 'recipient', 'channel'] }],
});

export type Notification = InferEntity<typeof NotificationSchema>;
