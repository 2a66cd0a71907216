import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const REMOTE_SESSION_PROTOCOLS = ['ssh', 'vnc', 'rdp'] as const;
/** Seed 001 §6.1: active ⇄ idle, then closed (by the user) / terminated (idle timeout, admin, reclaim, max duration) / disconnected (network; the grace period may bring it back). */
export const REMOTE_SESSION_STATUSES = ['active', 'idle', 'closed', 'terminated', 'disconnected'] as const;
export const REMOTE_SESSION_END_REASONS = ['user_close', 'idle_timeout', 'admin_force', 'error', 'reclaim', 'max_duration'] as const;
export type RemoteSessionStatus = (typeof REMOTE_SESSION_STATUSES)[number];
export type RemoteSessionEndReason = (typeof REMOTE_SESSION_END_REASONS)[number];

/**
 * A browser remote session (web terminal, VNC) through the API (seed 001 §6.2). The row is the
 * bus between API processes: a force-disconnect or a reclaim sets `terminate_requested_at`, and the
 * process holding the WebSocket closes it (and its SSH channel) within a second.
 */
export const RemoteSessionSchema = defineEntity({
  name: 'RemoteSession',
  tableName: 'remote_sessions',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    username: p.string().length(64),
    /** The user is platform staff (no tenant): their connection to a rented host is announced. */
    staff: p.boolean().default(false),
    allocationId: p.uuid().nullable().index(),
    customerId: p.uuid().nullable().index(),
    hostId: p.uuid().index(),
    osUsername: p.string().length(64),
    protocol: p.enum(REMOTE_SESSION_PROTOCOLS),
    sourceIp: p.string().length(64).nullable(),
    status: p.enum(REMOTE_SESSION_STATUSES).default('active').index(),
    startedAt: p.datetime(),
    lastActivityAt: p.datetime(),
    endedAt: p.datetime().nullable(),
    endReason: p.enum(REMOTE_SESSION_END_REASONS).nullable(),
    bytesSent: p.bigint('number').default(0),
    bytesReceived: p.bigint('number').default(0),
    /** File of the encrypted, compressed asciicast v2 recording (SSH). */
    recordingPath: p.string().length(500).nullable(),
    terminateRequestedAt: p.datetime().nullable(),
    terminateReason: p.enum(REMOTE_SESSION_END_REASONS).nullable(),
  },
});
export type RemoteSession = InferEntity<typeof RemoteSessionSchema>;

/**
 * The platform-managed key pair of an allocation for the web terminal: the public half goes into
 * the tenant's authorized_keys with their own keys at allocation (and leaves with the account at
 * reclaim); the private half stays here, encrypted (context `terminal-key:<allocationId>`).
 */
export const TerminalKeySchema = defineEntity({
  name: 'TerminalKey',
  tableName: 'terminal_keys',
  properties: {
    allocationId: p.uuid().primary(),
    publicKey: p.text(),
    privateKeyCiphertext: p.text(),
    keyId: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type TerminalKey = InferEntity<typeof TerminalKeySchema>;
