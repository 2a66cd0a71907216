import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const VNC_SERVICE_STATUSES = ['requested', 'running', 'removed'] as const;
export type VncServiceStatus = (typeof VNC_SERVICE_STATUSES)[number];

/**
 * VNC service auto-deployment (seed 001 §3.2): an allocation option. The host runs TigerVNC's Xvnc
 * as the customer's OS account on `display` (RFB port `rfb_port`) with a platform-managed VNC
 * password: generated inside the deploy activity, stored only encrypted (vault context
 * `vnc-password:<allocationId>:<version>`), revealed once to the customer user (then wiped), reset
 * on request (a new version). Reclaim stops the server and removes its files and entry.
 */
export const VncServiceSchema = defineEntity({
  name: 'VncService',
  tableName: 'vnc_services',
  properties: {
    allocationId: p.uuid().primary(),
    hostId: p.uuid().index(),
    osUsername: p.string().length(64),
    status: p.enum(VNC_SERVICE_STATUSES).default('requested'),
    display: p.integer().nullable(),
    rfbPort: p.integer().nullable(),
    passwordCiphertext: p.text().nullable(),
    passwordKeyId: p.string().length(64).nullable(),
    passwordVersion: p.integer().default(0),
    passwordRevealedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type VncService = InferEntity<typeof VncServiceSchema>;

export const vncPasswordContext = (allocationId: string, version: number) => `vnc-password:${allocationId}:${version}`;
