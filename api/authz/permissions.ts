// The permission catalogue: every capability a route can require, and the built-in roles that the
// migration seeds into the `roles` table (roles are data; this list is only the seed and the docs).

/** Every named capability, with what it lets a principal do. Routes declare exactly one. */
export const PERMISSIONS = {
  'host.read': 'See hosts (tenants: only the hosts of their allocations)',
  'host.write': 'Register, import, change status, ping and onboard hosts',
  'host.delete': 'Retire (delete) hosts',
  'host.key_repin': 'Re-pin a host key after a legitimate rekey',
  'host.lock_release': 'Release a leftover per-host lock',
  'host.command_read': 'See the recorded output (secret-redacted) of remote commands run on hosts',
  'host_group.manage': 'Create and delete host groups',
  'onboarding.read': 'See onboarding steps and batch progress',
  'remote_access.read': 'See remote-access entries and the generated nginx snippet',
  'remote_access.manage': "Switch hosts' remote access on or off and re-sync the managed gateway",
  'template.read': 'See environment templates',
  'template.write': 'Create and publish environment template versions',
  'allocation.read': 'See allocations and their progress',
  'allocation.create': 'Allocate a host to a customer',
  'allocation.manage': 'Extend, reclaim and retry allocations',
  'allocation.return': 'Return an allocated host early',
  'allocation.terminate': 'Terminate a lease and force a reclaim past its grace period',
  'account_opening.create': 'Submit and withdraw account opening requests',
  'account_opening.read': 'See account opening requests',
  'account_opening.approve': 'Approve and reject account opening requests',
  'account_opening.manage': 'Re-process failed account opening requests',
  'report.read': 'See platform-wide statistics',
  'credential.reveal': 'Reveal a generated password once (only the applicant / customer user it belongs to)',
  'cloud_user.read': 'See managed OS accounts',
  'cloud_user.manage': 'Disable, enable, reset and delete managed OS accounts',
  'customer.read': 'See customers and their users (tenants: their own company)',
  'customer.write': 'Create customers and add their users',
  'user.read': 'See platform users',
  'user.write': 'Create platform users and grant roles',
  'user.unlock': "Clear a user's failed-login lock",
  'session.manage': "See every user's live sessions (online users) and end them (kick-out)",
  'api_key.manage': "List, create and revoke other users' API keys (everyone manages their own)",
  'role_grant.manage': "Grant roles until a moment, extend and revoke such grants, and see anyone's grants",
  'department.manage': 'See, create and change departments and their admins',
  'registration.approve_roles': 'Approve or reject the roles of registrations, invite people with roles, and see every registration',
  'role.read': 'See roles and the permission catalogue',
  'role.manage': 'Create, change and delete roles',
  'ssh_key.manage': 'Add, list and revoke SSH keys (within the row scope)',
  'session.connect': 'See how to connect to an allocated host (connection summary) and open its web terminal',
  'vnc.password_reset': "Reset an allocation's VNC password (VNC auto-deployment); the customer user reveals the new one once",
  'vnc.restart': "Start an allocation's VNC server again when it is not running, e.g. after a host reboot (VNC auto-deployment)",
  'remote_session.manage': 'See remote sessions (web terminal, VNC), force-disconnect them and play back recordings',
  'audit.read': 'Read the audit trail',
  'audit.export': 'Export the audit trail',
  'notification.read': 'See the notification send log, delivery statistics, endpoints, subscriptions and templates',
  'notification.manage': 'Manage notification endpoints (webhooks, Slack, robots), subscriptions and template versions; send test notifications',
  'temporal.decode': 'Decode Temporal payloads (the Web UI codec endpoint)',
  'pii.read': 'See contact phone numbers and e-mail addresses unmasked',
  'scope.all': 'Row scope: see every user\'s rows (limited by host groups when the role has them), not only one\'s own',
  'scope.company': 'Row scope for tenant users: see the whole company\'s rows, not only one\'s own',
} as const;

export type Permission = keyof typeof PERMISSIONS;
export const PERMISSION_NAMES = Object.keys(PERMISSIONS) as Permission[];
/** Stored in a role's permission list: every permission, including ones added later. */
export const ALL = '*';

export const isPermission = (s: string): s is Permission => Object.hasOwn(PERMISSIONS, s);

export interface BuiltinRole {
  name: string;
  description: string;
  parent: string | null;
  permissions: Array<Permission | typeof ALL>;
}

/**
 * The seeded roles (seed 001 §5, 002, 004 §2.1). A child role has its parent's permissions too.
 * The migration inserts this same list; test/api/tenant-isolation.test.ts checks they agree.
 */
export const BUILTIN_ROLES: BuiltinRole[] = [
  { name: 'admin', description: 'Platform administrator: everything', parent: null, permissions: [ALL] },
  {
    name: 'viewer',
    description: 'Read-only staff: sees the fleet, allocations and requests; contacts masked',
    parent: null,
    permissions: ['scope.all', 'host.read', 'onboarding.read', 'remote_access.read', 'template.read', 'allocation.read', 'account_opening.read', 'customer.read', 'cloud_user.read', 'report.read', 'role.read'],
  },
  {
    name: 'operator',
    description: 'Runs the fleet: hosts, onboarding, templates, customers, allocations, managed accounts',
    parent: 'viewer',
    permissions: ['host.write', 'host_group.manage', 'template.write', 'allocation.create', 'allocation.manage', 'allocation.return', 'account_opening.create', 'account_opening.manage', 'cloud_user.manage', 'customer.write', 'ssh_key.manage', 'session.connect', 'pii.read', 'host.command_read', 'vnc.password_reset', 'vnc.restart'],
  },
  { name: 'approver', description: 'Decides account opening requests (never their own)', parent: 'viewer', permissions: ['account_opening.approve', 'account_opening.create', 'pii.read'] },
  { name: 'auditor', description: 'Reads and exports the audit trail and the user list', parent: 'viewer', permissions: ['audit.read', 'audit.export', 'user.read', 'temporal.decode'] },
  { name: 'requester', description: 'Requests OS accounts on hosts and reveals their own passwords', parent: null, permissions: ['host.read', 'template.read', 'account_opening.create', 'account_opening.read', 'credential.reveal', 'ssh_key.manage'] },
  {
    name: 'customer_member',
    description: 'A customer\'s person: sees only what is allocated to them, manages their own SSH keys',
    parent: null,
    permissions: ['host.read', 'allocation.read', 'allocation.return', 'session.connect', 'credential.reveal', 'ssh_key.manage', 'account_opening.create', 'account_opening.read', 'vnc.password_reset', 'vnc.restart'],
  },
  { name: 'customer_owner', description: 'A customer\'s owner: everything a member can, for the whole company, and its member list', parent: 'customer_member', permissions: ['scope.company', 'customer.read', 'pii.read'] },
];

export const BUILTIN_ROLE_NAMES = BUILTIN_ROLES.map((r) => r.name);

/**
 * The most a tenant's person (a user with a customer) can ever hold, whatever roles they are given:
 * capabilities whose routes are row-scoped to the company or the person's own rows. Staff-wide ones
 * (the audit trail, users, roles, notifications, the codec, fleet changes) are dropped from a
 * customer user's principal (api/authz/principal.ts), so a custom role cannot open them to a tenant.
 */
export const TENANT_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>([
  'host.read', 'host.command_read', 'onboarding.read', 'remote_access.read', 'template.read', 'report.read',
  'allocation.read', 'allocation.return', 'session.connect', 'vnc.password_reset', 'vnc.restart', 'remote_session.manage', 'credential.reveal', 'ssh_key.manage',
  'account_opening.create', 'account_opening.read', 'customer.read', 'pii.read', 'scope.company',
]);
