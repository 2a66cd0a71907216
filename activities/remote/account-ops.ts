import type { Host } from '../../db/entities/index.js';
import type { RemoteExecutor } from './executor.js';
import type { SshExecutor } from '../ssh/ssh-executor.js';
import type { WinRmExecutor } from '../winrm/winrm-executor.js';
import type { AccountOps, HostOps } from './host-ops.js';
import { linuxAccountOps, linuxHostOps } from '../linux/host-ops.js';
import { windowsAccountOps, windowsHostOps } from '../windows/host-ops.js';

export type { AccountOps, HostOps } from './host-ops.js';
export { check, loginFailure } from './ops-common.js';
export { linuxAccountOps } from '../linux/host-ops.js';
export { windowsAccountOps, windowsLoginTarget } from '../windows/host-ops.js';

/** Executors that can also open a one-off session with explicit credentials (to verify a new login). */
export type LoginVerifier = Pick<SshExecutor, 'verifyLogin'> | Pick<WinRmExecutor, 'verifyLogin'>;

/** The one place the OS picks an implementation: everything after it goes through HostOps. */
export function hostOpsFor(host: Pick<Host, 'os' | 'id'>, executors: { ssh: RemoteExecutor & LoginVerifier; winrm: RemoteExecutor & LoginVerifier }): HostOps {
  return host.os === 'windows' ? windowsHostOps(executors.winrm as WinRmExecutor, host.id) : linuxHostOps(executors.ssh as SshExecutor, host.id);
}

export function accountOpsFor(os: Host['os'], executor: RemoteExecutor, hostId: string): AccountOps {
  return os === 'windows' ? windowsAccountOps(executor as WinRmExecutor, hostId) : linuxAccountOps(executor as SshExecutor, hostId);
}
