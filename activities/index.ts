import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Transporter } from 'nodemailer';
import type { RemoteExecutor } from './remote/executor.js';
import type { LoginVerifier } from './remote/account-ops.js';
import type { Logger } from '../config/logger.js';
import type { Vault } from '../db/vault.js';
import type { NotifySettings } from './notify/center.js';
import type { ChannelSender } from './notify/channels/channel.js';
import type { NotifyChannel } from '../db/entities/index.js';
import type { GatewayPorts } from '../db/port-pool.js';
import { createRemoteActivities } from './remote/remote.activities.js';
import { createAccountActivities } from './remote/account.activities.js';
import { createHostDbActivities } from './db/host.activities.js';
import { createAccountOpeningDbActivities } from './db/account-opening.activities.js';
import { createNotifyActivities } from './notify/notify.activities.js';
import { createOnboardingActivities } from './remote/onboarding.activities.js';
import { createOnboardingDbActivities } from './db/onboarding.activities.js';
import { createAllocationRemoteActivities } from './remote/allocation.activities.js';
import { createAllocationDbActivities } from './db/allocation.activities.js';
import { createRegistrationDbActivities } from './db/registration.activities.js';
import { createRegistrationMailActivities } from './notify/registration-mail.activities.js';
import { createSecurityAlertActivities } from './notify/security-alerts.activities.js';
import type { SshExecutor } from './ssh/ssh-executor.js';
import { createReconcileActivities } from './db/reconcile.activities.js';
import { auditedExecutor } from './remote/audited-executor.js';
import { recordedExecutor } from './remote/command-records.js';
import { instrumentedExecutor } from './remote/instrumented-executor.js';
import { createAuditActivities } from './db/audit.activities.js';
import { createRecordingActivities } from './db/recording.activities.js';
import { createHostChangeLockActivities } from './temporal/host-change-lock.activities.js';
import { createRemoteSessionActivities } from './db/remote-session.activities.js';
import { createGatewayActivities, type GatewayConfig } from './gateway/gateway.activities.js';
import { createVncActivities } from './remote/vnc.activities.js';

export interface ActivityDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  /** SSH executor (Linux hosts). */
  ssh: RemoteExecutor & Pick<SshExecutor, 'verifyLogin'>;
  /** WinRM executor (Windows hosts). */
  winrm: RemoteExecutor & LoginVerifier;
  mailer: Transporter | null;
  mailFrom: string;
  /** Base domain for generated remote-access domains. */
  baseDomain: string;
  /** The remote-access gateway and its public-port pool (REMOTE_ACCESS_GATEWAY_ADDRESS, REMOTE_ACCESS_PORT_POOL). */
  gatewayPorts?: GatewayPorts;
  /** The platform-managed gateway nginx (GATEWAY_NGINX_CONF ...); unset: gateway-sync reports `not-configured`. */
  gatewayConfig?: GatewayConfig | null;
  /** Base URL links in emails point to (PUBLIC_BASE_URL); default http://127.0.0.1:3000. */
  publicBaseUrl?: string | (() => string);
  /** Where the audit archiver writes (DATA_DIR/audit-archive). */
  auditArchiveDir?: string;
  /** Where recording retention in `archive` mode moves recordings (DATA_DIR/recordings-archive). */
  recordingArchiveDir?: string;
  /** Notification center policy (language, rate limit, sensitive words, attempts): NOTIFY_* settings. */
  notifySettings?: Partial<NotifySettings>;
  /** Channel senders replacing the defaults (tests, benchmarks). */
  senders?: Partial<Record<NotifyChannel, ChannelSender>>;
}

/** The object the worker registers: every activity, with its dependencies injected. */
export function createActivities(plain: ActivityDeps) {
  // One audit hook for every remote change, whichever activity runs it; outside it, the command
  // record of each change with its full (redacted, bounded) output.
  const deps: ActivityDeps = {
    ...plain,
    ssh: recordedExecutor(auditedExecutor(instrumentedExecutor(plain.ssh, 'ssh'), plain), plain),
    winrm: recordedExecutor(auditedExecutor(instrumentedExecutor(plain.winrm, 'winrm'), plain), plain),
  };
  return {
    ...createRemoteActivities({ ssh: deps.ssh, winrm: deps.winrm, em: deps.em }),
    ...createAccountActivities(deps),
    ...createHostDbActivities(deps),
    ...createAccountOpeningDbActivities(deps),
    ...createNotifyActivities(deps),
    ...createSecurityAlertActivities(deps),
    ...createOnboardingActivities(deps),
    ...createOnboardingDbActivities(deps),
    ...createAllocationRemoteActivities(deps),
    ...createAllocationDbActivities(deps),
    ...createRegistrationDbActivities(deps),
    ...createRegistrationMailActivities(deps),
    ...createReconcileActivities(deps),
    ...createAuditActivities(plain),
    ...createRecordingActivities(plain),
    ...createHostChangeLockActivities(),
    ...createGatewayActivities(deps),
    ...createRemoteSessionActivities(deps),
    ...createVncActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
