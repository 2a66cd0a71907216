import type { Host, HostAccount } from '../../db/entities/index.js';

/**
 * What lifecycles (account opening, allocation, reclaim) do to a host, once per OS:
 * activities/linux/host-ops.ts (SSH, shell builders in linux.ts) and activities/windows/host-ops.ts
 * (WinRM, PowerShell builders in windows.ts). Lifecycle activities call this and never branch on
 * the OS; what one OS does not have (SSH keys on Windows) is `null`, and callers ask the interface.
 *
 * Every method is check-then-act (a retry does nothing twice) and throws classified
 * `ApplicationFailure`s: "could not tell" is retryable, never reported as "absent".
 */
export interface HostOps {
  readonly os: Host['os'];
  readonly accounts: AccountOps;
  /** authorized_keys (Linux). Null where customers log in with the password (Windows: RDP). */
  readonly keys: KeyOps | null;
  readonly tenant: TenantOps;
}

export interface AccountOps {
  /** True: it exists; false: the host said it does not; throws (retryable) when it cannot tell. */
  exists(username: string): Promise<boolean>;
  /** Whether the OS keeps the platform's marker on the account (Linux: GECOS/marker file). Without one, the DB row is the record. */
  readonly keepsMarker: boolean;
  /** Groups an account needs to log in the way customers do (Windows: Remote Desktop Users; Linux: none). */
  readonly loginGroups: readonly string[];
  /** The platform marker (reference of the request/allocation that created the account), or null. */
  readMarker(username: string): Promise<string | null>;
  create(input: { username: string; fullName: string; description: string; password: string; ref: string }): Promise<void>;
  setPassword(username: string, password: string): Promise<void>;
  addGroups(username: string, groups: string[]): Promise<void>;
  setEnabled(username: string, enabled: boolean): Promise<void>;
  /** Reclaim's lock: no new login (password locked / account disabled) and the password expired. */
  lock(username: string): Promise<void>;
  /** Ends the account's sessions and deletes it with its home (Linux) or profile (Windows). */
  remove(username: string): Promise<void>;
  /** The OS identity that outlives the name (uid on Linux, SID on Windows), as a string; null if the account is absent. */
  identity(username: string): Promise<string | null>;
  verifyLogin(host: Host, username: string, password: string): Promise<{ groups: string[] }>;
  /** `false` only when the host refused the credentials; throws (retryable) when it cannot tell. */
  loginWorks(host: Host, username: string, password: string): Promise<boolean>;
}

export interface KeyOps {
  add(username: string, publicKeys: string[]): Promise<{ added: number; present: number }>;
  /** Removes keys by fingerprint (or key text); returns how many lines were removed. */
  remove(username: string, fingerprintsOrKeys: string[]): Promise<number>;
  /** Fingerprints in authorized_keys as sshd reads it. */
  list(username: string): Promise<string[]>;
  /** A login with this private key works and the session is `username` (throws LoginVerificationFailed otherwise). */
  verifyKeyLogin(host: Host, username: string, privateKey: string): Promise<void>;
}

/** One tenant of a host: the allocation's account, with the identity recorded while it existed. */
export interface Tenant {
  host: Host;
  username: string;
  allocationId: string;
  /** uid / SID as recorded on the account row (null: never seen). */
  identity: string | null;
}

export interface TaskReport {
  userExists: boolean;
  /** The uid looked for (Linux; recorded on the account row, so a re-run can look after the name is gone). */
  uid?: number | null;
  /** The SID looked for (Windows). */
  sid?: string | null;
  /** The account is gone and the recorded uid belongs to another account now: nothing of that uid is counted. */
  uidReassigned?: { uid: number; owner: string };
  /** Processes other than SSH connection handlers (those are in `sshConnections`). */
  processes: number;
  sshConnections: number;
  gpuProcesses: number;
  /** Running containers the platform attributes to the tenant (label or uid); all of them in `containerList`. */
  containers: number;
  sessions: number;
  /** What else the tenant has on the host (counts by category). Windows: `tasks` (scheduled tasks). */
  scheduled?: { atJobs?: number; crontab?: number; linger?: boolean; userUnits?: number; tasks?: number };
  /** Files owned by the uid outside home and tmp (bounded scan). */
  files?: { count: number; status: string };
  /** Windows: the user profile (C:\Users\<name>) is still there. */
  profile?: boolean;
  /** Every running container with its owner where the runtime tells (`ownerUid` null = unknown). */
  containerList?: { id: string; image: string; ownerUid: number | null; attributed: boolean }[];
  /** What this host could not be asked (no systemd, no nvidia-smi, ...): reported, not skipped. */
  notChecked?: string[];
  /** Up to 20 process descriptions (`pid comm`), for the notice and the progress API. */
  sample: string[];
}

export const EMPTY_REPORT: TaskReport = { userExists: false, processes: 0, sshConnections: 0, gpuProcesses: 0, containers: 0, sessions: 0, sample: [] };

export interface TenantOps {
  /** What of the tenant is on the host; `identity` is what was looked for (to record on the row). */
  footprint(t: Tenant, files: 'outside-home-tmp' | 'everywhere' | 'none'): Promise<{ report: TaskReport; identity: string | null }>;
  /** Ends the tenant's work: asks nicely, waits up to `termWaitMs`, then ends everything; throws TasksStillRunning if something survived. */
  stop(t: Tenant, termWaitMs: number): Promise<{ signalled: string[]; ended?: Record<string, unknown>; remaining: TaskReport }>;
  /** An earlier tenant's leftovers (cleanPreviousTenant): everything ended and cleaned, before the account is removed. */
  endAll(t: Tenant): Promise<void>;
  /** Files and other leftovers outside the account (tmp, crontab, files of the uid; a profile whose account is gone). */
  cleanLeftovers(t: Tenant): Promise<Record<string, unknown>>;
  /** What is left after the account was deleted: category → count (empty = clean). */
  leftovers(t: Tenant): Promise<{ left: Record<string, number>; notChecked: string[]; filesScan: string }>;
}

/** The recorded identity of an account row (uid on Linux, SID on Windows), and how to record one. */
export function recordedIdentity(account: Pick<HostAccount, 'uid' | 'sid'> | null | undefined): string | null {
  if (!account) return null;
  return account.sid ?? (account.uid != null ? String(account.uid) : null);
}

export function recordIdentity(account: Pick<HostAccount, 'uid' | 'sid'>, identity: string | null): boolean {
  if (identity === null) return false;
  if (/^\d+$/.test(identity)) {
    if (account.uid === Number(identity)) return false;
    account.uid = Number(identity);
    return true;
  }
  if (account.sid === identity) return false;
  account.sid = identity;
  return true;
}
