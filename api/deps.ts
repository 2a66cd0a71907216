import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import type { Transporter } from 'nodemailer';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../config/logger.js';
import type { Vault } from '../db/vault.js';
import { DEFAULT_AUTH_SETTINGS, type AuthSettings } from '../config/auth.js';
import { PasswordHasher } from '../db/password-hash.js';
import type { SecurityRuleSettings } from '../db/audit/security-rules.js';

/** What authentication and the identity services need (also built by the CLI, without Temporal). */
export interface IdentityDeps {
  settings: AuthSettings;
  /** HS256 key for access tokens; also keys the HMACs of recovery and email codes. */
  jwtKey: Uint8Array;
  hasher: PasswordHasher;
  /** Injectable clock (lockouts, idle timeout, token expiry, TOTP). */
  clock: () => Date;
  /** Password-reset and email-code messages; null when SMTP_URL is unset (then nothing is sent). */
  mailer: Transporter | null;
  mailFrom: string;
  publicBaseUrl: string;
}
import type { RoleCache } from './authz/principal.js';
import type { TerminalSettings } from './remote/terminal.js';

/** What the API needs; injected so tests build the app directly against real services. */
export interface AppDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  /**
   * `eagerStart`: the client runs on the NativeConnection of a worker in this process that polls
   * `taskQueue` (`npm start`), so workflows the API starts and then waits on ask for eager start
   * (config/temporal.ts `eagerStartOptions`). Unset for a standalone API process.
   */
  temporal: { client: Client; taskQueue: string; eagerStart?: boolean };
  settings: { accountOpeningExpiryDays: number; leaseBufferDays?: number; reclaimGraceMinutes?: number; registrationStepDays?: number };
  /** Readiness probes: each throws when its dependency is unreachable. */
  checks: { db: () => Promise<void>; temporal: () => Promise<void> };
  /** Identity settings and key; defaults (a per-process random key, seed-004 policy) when omitted. */
  identity?: IdentityDeps;
  /** The roles table in memory; created by createApp when absent. */
  roleCache?: RoleCache;
  /** The built console (web/dist) to serve at `/`, and the Temporal Web UI it links runs to; not served when omitted. */
  console?: { distDir: string; temporalUi?: { url: string; namespace: string } };
  /** Web terminal settings (idle timeout, limits, recording dir); defaults when omitted. */
  terminal?: Partial<TerminalSettings>;
  /** Security alert rules (db/audit/security-rules.ts); defaults when omitted. */
  securityRules?: SecurityRuleSettings;
  /** Slack app signing secret (SLACK_SIGNING_SECRET): verifies interactivity callbacks. */
  slackSigningSecret?: string;
  /** The Temporal Web UI codec endpoint: origins allowed to call it (CORS); none when omitted. */
  codec?: { corsOrigins: string[] };
  /** GET /metrics: scrape token (else loopback only) and the SDK's Prometheus address to append. */
  metrics?: { token?: string; sdkAddress?: string };
}

/** Identity deps with defaults filled in. */
export function identityDefaults(partial: Partial<IdentityDeps> = {}): IdentityDeps {
  const settings = partial.settings ?? DEFAULT_AUTH_SETTINGS;
  return {
    settings,
    jwtKey: partial.jwtKey ?? randomBytes(32),
    hasher: partial.hasher ?? new PasswordHasher(settings.argon2),
    clock: partial.clock ?? (() => new Date()),
    mailer: partial.mailer ?? null,
    mailFrom: partial.mailFrom ?? 'Hostflow <hostflow@localhost>',
    publicBaseUrl: partial.publicBaseUrl ?? 'http://127.0.0.1:3000',
  };
}

export type AuthDeps = Pick<AppDeps, 'em' | 'vault' | 'logger' | 'securityRules'> & { identity: IdentityDeps };
