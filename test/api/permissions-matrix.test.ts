// The route × role matrix: generated from the app's route table. For every route and every seeded
// role, plus "no credentials" and "other tenant's user", the expected outcome class comes from the
// route's declared permission (built-in roles, inheritance computed independently in
// api/authz/matrix.ts) and a row-scope model of the seeded dataset written here; every route is
// then called for real. A route without a declared permission, or without a fixture here, fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Express } from 'express';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp, routeTable } from '../../api/app.js';
import type { RouteEntry } from '../../api/route.js';
import { readFile } from 'node:fs/promises';
import { effectivePermissions, permissionsMarkdown, readmePermissionsSection } from '../../api/authz/matrix.js';
import { BUILTIN_ROLE_NAMES } from '../../api/authz/permissions.js';
import { createLogger } from '../../config/logger.js';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  AuditEventSchema,
  CustomerSchema,
  EnvTemplateSchema,
  HostAccountSchema,
  HostGroupSchema,
  HostSchema,
  RoleSchema,
  SshKeySchema,
  UserSchema,
} from '../../db/entities/index.js';

/** Callers: one user per seeded role, plus no credentials and another tenant's owner. */
type Caller = { key: string; roles: string[]; tenant: 'A' | 'B' | null };
const CALLERS: Caller[] = [
  { key: 'none', roles: [], tenant: null },
  ...BUILTIN_ROLE_NAMES.map((r) => ({ key: r, roles: [r], tenant: r.startsWith('customer_') ? ('A' as const) : null })),
  { key: 'other_tenant', roles: ['customer_owner'], tenant: 'B' },
];

/** A seeded row a route acts on: who it belongs to, for the scope model. */
interface Target {
  what: string;
  kind: 'host' | 'allocation' | 'request' | 'ssh_key' | 'customer' | 'cloud_user' | 'host_group' | 'fleet';
  tenant: 'A' | 'B' | null;
  /** The caller key the row is "own" for (applicant, customer user, key owner). */
  owner: string | null;
}
interface Fixture {
  path: (ids: Ids) => string;
  body?: (ids: Ids) => unknown;
  target?: Target;
  /** Only the row's owner may (reveal, withdraw): an in-scope non-owner gets 403. */
  ownerOnly?: boolean;
  /** The route answers 404 for a Temporal id it cannot find, after authorization. */
  missingOk?: boolean;
}
type Ids = Record<string, string>;

const future = () => new Date(Date.now() + 30 * 86_400_000).toISOString();
const hostA: Target = { what: 'host', kind: 'host', tenant: 'A', owner: 'customer_member' };
const allocA: Target = { what: 'allocation', kind: 'allocation', tenant: 'A', owner: 'customer_member' };
const reqR: Target = { what: 'account opening request', kind: 'request', tenant: null, owner: 'requester' };
const keyA: Target = { what: 'ssh key', kind: 'ssh_key', tenant: 'A', owner: 'customer_member' };
const custA: Target = { what: 'customer', kind: 'customer', tenant: 'A', owner: null };
const cuA: Target = { what: 'cloud user', kind: 'cloud_user', tenant: null, owner: null };
const groupE: Target = { what: 'host group', kind: 'host_group', tenant: null, owner: null };

/**
 * How each route is called. Routes that would start remote work get rows that stop them after
 * authorization: an online host (onboarding → 409), a finished request (decisions → 409), an
 * allocation with no running lease (extend/return/terminate/reclaim → 409), a deleted cloud user
 * (operations → 409), an already revoked key, a host without credentials (ping fails fast).
 */
const FIXTURES: Record<string, Fixture> = {
  'POST /api/v1/users': { path: () => '/api/v1/users', body: () => ({}) },
  'GET /api/v1/users': { path: () => '/api/v1/users' },
  'POST /api/v1/hosts/onboard': { path: () => '/api/v1/hosts/onboard', body: (i) => ({ host_ids: [i.hostA] }) },
  'GET /api/v1/hosts/onboard/:batchId': { path: () => `/api/v1/hosts/onboard/${randomUUID()}`, missingOk: true },
  'POST /api/v1/hosts/:id/onboarding': { path: (i) => `/api/v1/hosts/${i.hostA}/onboarding`, body: () => ({}), target: hostA },
  'POST /api/v1/hosts/:id/onboarding/retry': { path: (i) => `/api/v1/hosts/${i.hostA}/onboarding/retry`, body: () => ({}), target: hostA },
  'GET /api/v1/hosts/:id/onboarding': { path: (i) => `/api/v1/hosts/${i.hostA}/onboarding`, target: hostA },
  'POST /api/v1/hosts/:id/onboarding/confirm-facts': { path: (i) => `/api/v1/hosts/${i.hostA}/onboarding/confirm-facts`, body: () => ({ accept: true }), target: hostA },
  'GET /api/v1/hosts/:id/remote-access': { path: (i) => `/api/v1/hosts/${i.hostA}/remote-access`, target: hostA },
  'GET /api/v1/hosts/:id/commands': { path: (i) => `/api/v1/hosts/${i.hostA}/commands`, target: hostA },
  'GET /api/v1/hosts/:id/commands/:commandId': { path: (i) => `/api/v1/hosts/${i.hostA}/commands/${randomUUID()}`, target: hostA, missingOk: true },
  'PATCH /api/v1/hosts/:id/remote-access': { path: (i) => `/api/v1/hosts/${i.hostA}/remote-access`, body: () => ({ enabled: 'not-a-boolean' }) },
  'POST /api/v1/allocations/:id/terminal/ticket': { path: (i) => `/api/v1/allocations/${i.allocA}/terminal/ticket`, target: allocA },
  'POST /api/v1/allocations/:id/vnc/ticket': { path: (i) => `/api/v1/allocations/${i.allocA}/vnc/ticket`, target: allocA },
  'POST /api/v1/allocations/:id/vnc/password/reveal': { path: (i) => `/api/v1/allocations/${i.allocA}/vnc/password/reveal`, target: allocA, ownerOnly: true },
  'POST /api/v1/allocations/:id/vnc/password/reset': { path: (i) => `/api/v1/allocations/${i.allocA}/vnc/password/reset`, target: allocA },
  'POST /api/v1/allocations/:id/vnc/restart': { path: (i) => `/api/v1/allocations/${i.allocA}/vnc/restart`, target: allocA },
  'GET /api/v1/allocations/:id/vnc': { path: (i) => `/api/v1/allocations/${i.allocA}/vnc`, target: allocA },
  'POST /api/v1/allocations/:id/files': { path: (i) => `/api/v1/allocations/${i.allocA}/files?path=matrix.txt`, target: allocA },
  'GET /api/v1/allocations/:id/rdp': { path: (i) => `/api/v1/allocations/${i.allocA}/rdp`, target: allocA },
  'GET /api/v1/allocations/:id/files': { path: (i) => `/api/v1/allocations/${i.allocA}/files?path=matrix.txt`, target: allocA },
  'GET /api/v1/remote-sessions': { path: () => '/api/v1/remote-sessions' },
  'POST /api/v1/remote-sessions/:id/terminate': { path: () => `/api/v1/remote-sessions/${randomUUID()}/terminate`, missingOk: true },
  'GET /api/v1/remote-sessions/:id/recording': { path: () => `/api/v1/remote-sessions/${randomUUID()}/recording`, missingOk: true },
  'POST /api/v1/gateway/sync': { path: () => '/api/v1/gateway/sync', body: () => ({ wait: 'not-a-boolean' }) },
  'POST /api/v1/hosts': { path: () => '/api/v1/hosts', body: () => ({}) },
  'POST /api/v1/hosts/import': { path: () => '/api/v1/hosts/import', body: () => ({ hosts: [] }) },
  'POST /api/v1/hosts/import/preview': { path: () => '/api/v1/hosts/import/preview', body: () => ({ hosts: [] }) },
  'GET /api/v1/hosts': { path: () => '/api/v1/hosts' },
  'GET /api/v1/hosts/:id': { path: (i) => `/api/v1/hosts/${i.hostA}`, target: hostA },
  'POST /api/v1/hosts/:id/status': { path: (i) => `/api/v1/hosts/${i.hostA}/status`, body: () => ({ status: 'onboarding' }), target: hostA },
  'POST /api/v1/hosts/:id/ping': { path: (i) => `/api/v1/hosts/${i.hostA}/ping`, target: hostA },
  'PATCH /api/v1/hosts/:id': { path: (i) => `/api/v1/hosts/${i.hostA}`, body: () => ({ matrix_unknown_field: 1 }), target: hostA },
  'DELETE /api/v1/hosts/:id': { path: () => `/api/v1/hosts/${randomUUID()}`, missingOk: true },
  'POST /api/v1/hosts/:id/host-key/repin': { path: () => `/api/v1/hosts/${randomUUID()}/host-key/repin`, body: () => ({}), missingOk: true },
  'POST /api/v1/hosts/:id/lock/release': { path: () => `/api/v1/hosts/${randomUUID()}/lock/release`, missingOk: true },
  'POST /api/v1/host-groups': { path: () => '/api/v1/host-groups', body: () => ({}) },
  'GET /api/v1/host-groups': { path: () => '/api/v1/host-groups' },
  'DELETE /api/v1/host-groups/:id': { path: (i) => `/api/v1/host-groups/${i.groupE}`, target: groupE },
  'POST /api/v1/env-templates': { path: () => '/api/v1/env-templates', body: () => ({}) },
  'GET /api/v1/env-templates': { path: () => '/api/v1/env-templates' },
  'POST /api/v1/env-templates/:id/publish': { path: (i) => `/api/v1/env-templates/${i.template}/publish` },
  'POST /api/v1/account-openings': { path: () => '/api/v1/account-openings', body: () => ({}) },
  'GET /api/v1/account-openings': { path: () => '/api/v1/account-openings' },
  'GET /api/v1/account-openings/stats': { path: () => '/api/v1/account-openings/stats' },
  'GET /api/v1/account-openings/:id': { path: (i) => `/api/v1/account-openings/${i.reqR}`, target: reqR },
  'GET /api/v1/account-openings/:id/plan': { path: (i) => `/api/v1/account-openings/${i.reqR}/plan`, target: reqR },
  'POST /api/v1/account-openings/batch/approve': { path: () => '/api/v1/account-openings/batch/approve', body: (i) => ({ ids: [i.reqR] }) },
  'POST /api/v1/account-openings/batch/reject': { path: () => '/api/v1/account-openings/batch/reject', body: (i) => ({ ids: [i.reqR], reason: 'matrix' }) },
  'POST /api/v1/account-openings/:id/approve': { path: (i) => `/api/v1/account-openings/${i.reqR}/approve`, body: () => ({}), target: reqR },
  'POST /api/v1/account-openings/:id/reject': { path: (i) => `/api/v1/account-openings/${i.reqR}/reject`, body: () => ({ reason: 'matrix' }), target: reqR },
  'POST /api/v1/account-openings/:id/withdraw': { path: (i) => `/api/v1/account-openings/${i.reqR}/withdraw`, target: reqR, ownerOnly: true },
  'POST /api/v1/account-openings/:id/process': { path: (i) => `/api/v1/account-openings/${i.reqR}/process`, target: reqR },
  'POST /api/v1/account-openings/:id/credentials/reveal': { path: (i) => `/api/v1/account-openings/${i.reqR}/credentials/reveal`, target: reqR, ownerOnly: true },
  'GET /api/v1/cloud-users': { path: () => '/api/v1/cloud-users' },
  'POST /api/v1/cloud-users/batch/disable': { path: () => '/api/v1/cloud-users/batch/disable', body: (i) => ({ ids: [i.cuA] }) },
  'POST /api/v1/cloud-users/batch/enable': { path: () => '/api/v1/cloud-users/batch/enable', body: (i) => ({ ids: [i.cuA] }) },
  'POST /api/v1/cloud-users/batch/delete': { path: () => '/api/v1/cloud-users/batch/delete', body: (i) => ({ ids: [i.cuA] }) },
  'POST /api/v1/cloud-users/:id/disable': { path: (i) => `/api/v1/cloud-users/${i.cuA}/disable`, target: cuA },
  'POST /api/v1/cloud-users/:id/enable': { path: (i) => `/api/v1/cloud-users/${i.cuA}/enable`, target: cuA },
  'POST /api/v1/cloud-users/:id/reset-password': { path: (i) => `/api/v1/cloud-users/${i.cuA}/reset-password`, target: cuA },
  'DELETE /api/v1/cloud-users/:id': { path: (i) => `/api/v1/cloud-users/${i.cuA}`, target: cuA },
  'POST /api/v1/customers': { path: () => '/api/v1/customers', body: () => ({}) },
  'GET /api/v1/customers': { path: () => '/api/v1/customers' },
  'GET /api/v1/customers/:id': { path: (i) => `/api/v1/customers/${i.custA}`, target: custA },
  'PATCH /api/v1/customers/:id': { path: (i) => `/api/v1/customers/${i.custA}`, body: () => ({ matrix_unknown_field: 1 }), target: custA },
  'POST /api/v1/customers/:id/users': { path: (i) => `/api/v1/customers/${i.custA}/users`, body: () => ({ username: 'matrix_dup', email: 'dup@a.test' }), target: custA },
  'GET /api/v1/customers/:id/users': { path: (i) => `/api/v1/customers/${i.custA}/users`, target: custA },
  'POST /api/v1/ssh-keys': { path: () => '/api/v1/ssh-keys', body: () => ({ public_key: 'not a key' }) },
  'GET /api/v1/ssh-keys': { path: () => '/api/v1/ssh-keys' },
  'DELETE /api/v1/ssh-keys/:id': { path: (i) => `/api/v1/ssh-keys/${i.keyA}`, target: keyA },
  'POST /api/v1/allocations': { path: () => '/api/v1/allocations', body: () => ({}) },
  'GET /api/v1/allocations': { path: () => '/api/v1/allocations' },
  'GET /api/v1/allocations/stats': { path: () => '/api/v1/allocations/stats' },
  'GET /api/v1/allocations/:id': { path: (i) => `/api/v1/allocations/${i.allocA}`, target: allocA },
  'POST /api/v1/allocations/:id/extend': { path: (i) => `/api/v1/allocations/${i.allocA}/extend`, body: () => ({ ends_at: future() }), target: allocA },
  'POST /api/v1/allocations/:id/return': { path: (i) => `/api/v1/allocations/${i.allocA}/return`, body: () => ({}), target: allocA },
  'POST /api/v1/allocations/:id/terminate': { path: (i) => `/api/v1/allocations/${i.allocA}/terminate`, body: () => ({ reason: 'matrix' }), target: allocA },
  'POST /api/v1/allocations/:id/reclaim': { path: (i) => `/api/v1/allocations/${i.allocA}/reclaim`, target: allocA },
  'POST /api/v1/allocations/:id/reclaim/force': { path: (i) => `/api/v1/allocations/${i.allocA}/reclaim/force`, target: allocA },
  'POST /api/v1/allocations/:id/retry': { path: (i) => `/api/v1/allocations/${i.allocA}/retry`, target: allocA },
  'POST /api/v1/allocations/:id/cancel': { path: (i) => `/api/v1/allocations/${i.allocA}/cancel`, body: () => ({}), target: allocA },
  'GET /api/v1/allocations/:id/progress': { path: (i) => `/api/v1/allocations/${i.allocA}/progress`, target: allocA },
  'GET /api/v1/allocations/:id/plan': { path: (i) => `/api/v1/allocations/${i.allocA}/plan`, target: allocA },
  'GET /api/v1/allocations/:id/reclaim-plan': { path: (i) => `/api/v1/allocations/${i.allocA}/reclaim-plan`, target: allocA },
  'GET /api/v1/allocations/:id/connection-summary': { path: (i) => `/api/v1/allocations/${i.allocA}/connection-summary`, target: allocA },
  'POST /api/v1/allocations/:id/credentials/reveal': { path: (i) => `/api/v1/allocations/${i.allocA}/credentials/reveal`, target: allocA, ownerOnly: true },
  'GET /api/v1/permissions': { path: () => '/api/v1/permissions' },
  'GET /api/v1/roles': { path: () => '/api/v1/roles' },
  'POST /api/v1/roles': { path: () => '/api/v1/roles', body: () => ({}) },
  'PATCH /api/v1/roles/:name': { path: () => '/api/v1/roles/matrix-custom', body: () => ({ description: 'touched by the matrix' }) },
  'DELETE /api/v1/roles/:name': { path: () => '/api/v1/roles/viewer' },
  // Identity: bodies that stop at validation (never a real login, password or code), ids that do not
  // exist (404 after authorization), and API-key callers (logout and step-up need a session: 400).
  'POST /api/v1/auth/login': { path: () => '/api/v1/auth/login', body: () => ({}) },
  'POST /api/v1/auth/refresh': { path: () => '/api/v1/auth/refresh', body: () => ({}) },
  'POST /api/v1/auth/logout': { path: () => '/api/v1/auth/logout' },
  'GET /api/v1/auth/me': { path: () => '/api/v1/auth/me' },
  'POST /api/v1/auth/password/change': { path: () => '/api/v1/auth/password/change', body: () => ({}) },
  'POST /api/v1/auth/password/reset': { path: () => '/api/v1/auth/password/reset', body: () => ({}) },
  'POST /api/v1/auth/password/reset/confirm': { path: () => '/api/v1/auth/password/reset/confirm', body: () => ({}) },
  'GET /api/v1/auth/sessions': { path: () => '/api/v1/auth/sessions' },
  'DELETE /api/v1/auth/sessions/:id': { path: () => `/api/v1/auth/sessions/${randomUUID()}`, missingOk: true },
  'POST /api/v1/auth/mfa/totp/enroll': { path: () => '/api/v1/auth/mfa/totp/enroll' },
  'POST /api/v1/auth/mfa/totp/confirm': { path: () => '/api/v1/auth/mfa/totp/confirm', body: () => ({}) },
  'POST /api/v1/auth/mfa/recovery-codes': { path: () => '/api/v1/auth/mfa/recovery-codes' },
  'POST /api/v1/auth/mfa/email/enroll': { path: () => '/api/v1/auth/mfa/email/enroll' },
  'POST /api/v1/auth/mfa/email/confirm': { path: () => '/api/v1/auth/mfa/email/confirm', body: () => ({}) },
  'POST /api/v1/auth/mfa/email/send': { path: () => '/api/v1/auth/mfa/email/send' },
  'POST /api/v1/auth/mfa/verify': { path: () => '/api/v1/auth/mfa/verify', body: () => ({}) },
  'DELETE /api/v1/auth/mfa': { path: () => '/api/v1/auth/mfa' },
  'GET /api/v1/audit-events': { path: () => '/api/v1/audit-events' },
  'GET /api/v1/audit-events/export': { path: () => '/api/v1/audit-events/export?format=json' },
  'GET /api/v1/login-events': { path: () => '/api/v1/login-events' },
  'POST /api/v1/temporal/codec/decode': { path: () => '/api/v1/temporal/codec/decode', body: () => ({ payloads: [] }) },
  'POST /api/v1/temporal/codec/encode': { path: () => '/api/v1/temporal/codec/encode', body: () => ({ payloads: [] }) },
  'POST /api/v1/temporal/codec/session': { path: () => '/api/v1/temporal/codec/session' },
  'DELETE /api/v1/temporal/codec/session': { path: () => '/api/v1/temporal/codec/session' },
  'GET /api/v1/security-events': { path: () => '/api/v1/security-events' },
  'GET /api/v1/sessions': { path: () => '/api/v1/sessions' },
  'DELETE /api/v1/sessions/:id': { path: () => `/api/v1/sessions/${randomUUID()}`, missingOk: true },
  'POST /api/v1/api-keys': { path: () => '/api/v1/api-keys', body: () => ({}) },
  'GET /api/v1/api-keys': { path: () => '/api/v1/api-keys' },
  'DELETE /api/v1/api-keys/:id': { path: () => `/api/v1/api-keys/${randomUUID()}`, missingOk: true },
  'POST /api/v1/users/:id/unlock': { path: (i) => `/api/v1/users/${i.userR}/unlock` },
  'PATCH /api/v1/users/:id': { path: (i) => `/api/v1/users/${i.userR}`, body: () => ({ matrix_unknown_field: 1 }) },
  // Registration: public forms stop at validation; reviewer routes are for any principal (the
  // department-admin check is in the service: an unknown id is 404 for everyone).
  'GET /api/v1/departments': { path: () => '/api/v1/departments' },
  'GET /api/v1/registrations/departments': { path: () => '/api/v1/registrations/departments' },
  'POST /api/v1/departments': { path: () => '/api/v1/departments', body: () => ({}) },
  'PATCH /api/v1/departments/:id': { path: () => `/api/v1/departments/${randomUUID()}`, body: () => ({}), missingOk: true },
  'POST /api/v1/registrations': { path: () => '/api/v1/registrations', body: () => ({}) },
  'POST /api/v1/registrations/verify': { path: () => '/api/v1/registrations/verify', body: () => ({}) },
  'GET /api/v1/registrations': { path: () => '/api/v1/registrations' },
  'GET /api/v1/registrations/:id': { path: () => `/api/v1/registrations/${randomUUID()}`, missingOk: true },
  'PUT /api/v1/registrations/:id': { path: () => `/api/v1/registrations/${randomUUID()}`, body: () => ({}) },
  'POST /api/v1/registrations/:id/department-review': { path: () => `/api/v1/registrations/${randomUUID()}/department-review`, body: () => ({}) },
  'POST /api/v1/registrations/:id/role-approval': { path: () => `/api/v1/registrations/${randomUUID()}/role-approval`, body: () => ({}) },
  'POST /api/v1/invitations': { path: () => '/api/v1/invitations', body: () => ({}) },
  'POST /api/v1/users/:id/role-grants': { path: (i) => `/api/v1/users/${i.userR}/role-grants`, body: () => ({}) },
  // Own grants, or anyone's with role_grant.manage; someone else's is 404 (user not found).
  'GET /api/v1/users/:id/role-grants': { path: (i) => `/api/v1/users/${i.userR}/role-grants`, missingOk: true },
  'POST /api/v1/users/:id/role-grants/:grantId/extend': { path: (i) => `/api/v1/users/${i.userR}/role-grants/${randomUUID()}/extend`, body: () => ({}) },
  'POST /api/v1/users/:id/role-grants/:grantId/revoke': { path: (i) => `/api/v1/users/${i.userR}/role-grants/${randomUUID()}/revoke`, body: () => ({}) },
  // Notification center: the inbox is every principal's own; management stops at validation.
  'GET /api/v1/messages': { path: () => '/api/v1/messages' },
  'GET /api/v1/messages/unread-count': { path: () => '/api/v1/messages/unread-count' },
  'POST /api/v1/messages/read-all': { path: () => '/api/v1/messages/read-all' },
  'POST /api/v1/messages/:id/read': { path: () => `/api/v1/messages/${randomUUID()}/read`, missingOk: true },
  'PUT /api/v1/messages/preferences': { path: () => '/api/v1/messages/preferences', body: () => ({}) },
  'GET /api/v1/notifications/events': { path: () => '/api/v1/notifications/events' },
  'GET /api/v1/notifications/log': { path: () => '/api/v1/notifications/log' },
  'GET /api/v1/notifications/stats': { path: () => '/api/v1/notifications/stats' },
  'POST /api/v1/notifications/endpoints': { path: () => '/api/v1/notifications/endpoints', body: () => ({}) },
  'GET /api/v1/notifications/endpoints': { path: () => '/api/v1/notifications/endpoints' },
  'POST /api/v1/notifications/endpoints/:id/rotate-secret': { path: () => `/api/v1/notifications/endpoints/${randomUUID()}/rotate-secret`, body: () => ({ grace_hours: -1 }) },
  'DELETE /api/v1/notifications/endpoints/:id': { path: () => `/api/v1/notifications/endpoints/${randomUUID()}`, missingOk: true },
  'POST /api/v1/notifications/subscriptions': { path: () => '/api/v1/notifications/subscriptions', body: () => ({}) },
  'GET /api/v1/notifications/subscriptions': { path: () => '/api/v1/notifications/subscriptions' },
  'DELETE /api/v1/notifications/subscriptions/:id': { path: () => `/api/v1/notifications/subscriptions/${randomUUID()}`, missingOk: true },
  'POST /api/v1/notifications/templates': { path: () => '/api/v1/notifications/templates', body: () => ({}) },
  'GET /api/v1/notifications/templates': { path: () => '/api/v1/notifications/templates' },
  'POST /api/v1/notifications/test': { path: () => '/api/v1/notifications/test', body: () => ({ user_id: 'not-a-uuid' }) },
  'GET /api/v1/notifications/unsubscribe': { path: () => '/api/v1/notifications/unsubscribe?token=not-a-valid-token' },
  'POST /api/v1/notifications/unsubscribe': { path: () => '/api/v1/notifications/unsubscribe?token=not-a-valid-token' },
  'GET /api/v1/notifications/actions/:token': { path: () => '/api/v1/notifications/actions/not-a-valid-token' },
  'POST /api/v1/notifications/actions/:token': { path: () => '/api/v1/notifications/actions/not-a-valid-token', body: () => ({}) },
  'POST /api/v1/integrations/slack/actions': { path: () => '/api/v1/integrations/slack/actions' },
};

/** Endpoints served outside defineRoute: public by design (probes and the API description). */
const OUTSIDE_DEFINE_ROUTE = new Set(['GET /healthz', 'GET /readyz', 'GET /api/openapi.json', 'GET /metrics']);

/** The row-scope model of the seeded dataset: may this caller see this row? */
function visible(c: Caller, t: Target): boolean {
  const perms = effectivePermissions(c.roles[0] ?? '');
  if (!c.tenant) {
    if (perms.has('scope.all')) return true;
    // Own-scope staff (requester): the fleet is visible, rows only their own.
    if (t.kind === 'host' || t.kind === 'host_group' || t.kind === 'fleet') return true;
    return t.owner === c.key;
  }
  if (t.kind === 'cloud_user' || t.kind === 'host_group') return false;
  if (t.tenant !== c.tenant) return false;
  return perms.has('scope.company') || t.kind === 'customer' || t.owner === c.key;
}

type Outcome = '2xx/400/409' | '401' | '403' | '404';
function expected(route: RouteEntry, f: Fixture, c: Caller): Outcome {
  if (route.permission === 'public') return '2xx/400/409';
  if (!c.roles.length) return '401';
  if (route.permission !== 'authenticated' && !effectivePermissions(c.roles[0]!).has(route.permission)) return '403';
  if (f.target && !visible(c, f.target)) return '404';
  if (f.ownerOnly && f.target?.owner !== c.key) return '403';
  return '2xx/400/409';
}
function classify(status: number, message: string, f: Fixture): string {
  if (status === 401 || status === 403) return String(status);
  if (status === 404 && f.target && message === `${f.target.what} not found`) return '404';
  if ((status >= 200 && status < 300) || status === 400 || status === 409 || (status === 404 && f.missingOk)) return '2xx/400/409';
  return `HTTP ${status}: ${message}`;
}

/** Every endpoint Express serves: method + path, read from the router stack. */
function servedEndpoints(app: Express): Set<string> {
  const out = new Set<string>();
  type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };
  const walk = (stack: Layer[]) => {
    for (const l of stack) {
      if (l.route) for (const m of Object.keys(l.route.methods)) out.add(`${m.toUpperCase()} ${l.route.path}`);
      else if (l.handle?.stack) walk(l.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

describe.each(DB_KINDS)('route × role matrix on %s', (db) => {
  let p: TestPlatform;
  let app: Express;
  const ids: Ids = {};
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    p = await startTestPlatform({ db, worker: true });
    app = createApp({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), temporal: { client: p.client, taskQueue: p.taskQueue }, settings: { accountOpeningExpiryDays: 7 }, checks: { db: async () => undefined, temporal: async () => undefined } });
    const em = p.db.em.fork();
    const custA = em.create(CustomerSchema, { name: 'Tenant A', code: 'tenant-a', contactEmail: 'ops@a.test', contactPhone: '13812341234' });
    const custB = em.create(CustomerSchema, { name: 'Tenant B', code: 'tenant-b', contactEmail: 'ops@b.test', contactPhone: '13912341234' });
    const users: Record<string, string> = {};
    for (const c of CALLERS.filter((x) => x.roles.length)) {
      users[c.key] = em.create(UserSchema, { username: `m_${c.key}`, email: `${c.key}@m.test`, roles: c.roles, customerId: c.tenant === 'A' ? custA.id : c.tenant === 'B' ? custB.id : null }).id;
    }
    const group = em.create(HostGroupSchema, { name: 'east' });
    const host = (slug: string) => em.create(HostSchema, { slug, name: slug, address: '127.0.0.1', port: 1, os: 'linux', username: 'u', group: 'east', status: 'online' });
    const hA = host('matrix-a');
    const hB = host('matrix-b');
    const allocation = (h: typeof hA, c: typeof custA, userId: string) =>
      em.create(AllocationSchema, { host: h, customer: c, customerUser: userId, osUsername: 'u', startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'matrix' });
    const aA = allocation(hA, custA, users.customer_member!);
    allocation(hB, custB, users.other_tenant!);
    const req = em.create(AccountOpeningRequestSchema, { applicant: users.requester!, contactEmail: 'r@m.test', username: 'rq', fullName: 'R Q', host: hA, status: 'done', workflowId: 'account-opening/matrix', expiresAt: new Date(Date.now() + 86_400_000) });
    const key = em.create(SshKeySchema, { user: users.customer_member!, type: 'ssh-ed25519', bits: 256, publicKey: 'ssh-ed25519 AAAA matrix', fingerprint: `SHA256:matrix-${db}`, revokedAt: new Date() });
    const cu = em.create(HostAccountSchema, { host: hA, username: 'gone', origin: 'platform-created', status: 'deleted' });
    const tpl = em.create(EnvTemplateSchema, { name: 'matrix', version: 1, steps: [], publishedAt: new Date() });
    em.create(RoleSchema, { name: 'matrix-custom', description: '', permissions: ['host.read'], hostGroupIds: [], builtin: false });
    await em.flush();
    for (const c of CALLERS.filter((x) => x.roles.length)) tokens[c.key] = await p.tokenFor(users[c.key]!);
    Object.assign(ids, { userR: users.requester!, hostA: hA.id, allocA: aA.id, reqR: req.id, keyA: key.id, custA: custA.id, cuA: cu.id, groupE: group.id, template: tpl.id });
  });
  afterAll(() => p?.close());

  it('every served endpoint is declared with a permission and has a fixture here', () => {
    const table = routeTable(app);
    const declared = new Set(table.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    const undeclared = [...servedEndpoints(app)].filter((e) => !declared.has(e) && !OUTSIDE_DEFINE_ROUTE.has(e));
    expect(undeclared, 'endpoints served without defineRoute (no declared permission)').toEqual([]);
    expect(table.filter((r) => !r.permission), 'routes without a permission').toEqual([]);
    const missing = table.map((r) => `${r.method.toUpperCase()} ${r.path}`).filter((k) => !FIXTURES[k]);
    expect(missing, 'routes without a fixture in the matrix test: add one').toEqual([]);
  });

  it('docs/permissions.md is the table of this route table (npm run docs:permissions)', async () => {
    expect(await readFile('docs/permissions.md', 'utf8'), 'docs/permissions.md is stale: run npm run docs:permissions').toBe(permissionsMarkdown(routeTable(app)));
    const readme = await readFile('README.md', 'utf8');
    expect(readme.includes(readmePermissionsSection(routeTable(app))), "README.md's Permissions section is stale: run npm run docs:permissions").toBe(true);
  });

  it('a route without a declared permission stops the app from starting', async () => {
    const { defineRoute } = await import('../../api/route.js');
    const { Router } = await import('express');
    const { OpenAPIRegistry, z } = await import('../../api/openapi.js');
    expect(() => defineRoute(Router(), new OpenAPIRegistry(), { method: 'get', path: '/x', summary: 'x', tags: [], response: z.object({}), handler: async () => ({}) } as never)).toThrow(/declares no known permission/);
    expect(() => defineRoute(Router(), new OpenAPIRegistry(), { method: 'get', path: '/x', summary: 'x', tags: [], permission: 'host.reed', response: z.object({}), handler: async () => ({}) } as never)).toThrow(/declares no known permission/);
  });

  it('every route × caller answers the class its permission and scope predict', { timeout: 300_000 }, async () => {
    const table = routeTable(app);
    const rows: string[] = [];
    const mismatches: string[] = [];
    const short: Record<Outcome, string> = { '2xx/400/409': 'ok', '401': '401', '403': '403', '404': '404' };
    for (const route of table) {
      const key = `${route.method.toUpperCase()} ${route.path}`;
      const f = FIXTURES[key]!;
      const cells: string[] = [];
      for (const c of CALLERS) {
        const want = expected(route, f, c);
        const res = await p.api(route.method.toUpperCase(), f.path(ids), { token: c.roles.length ? tokens[c.key]! : null, body: f.body?.(ids) ?? (route.hasBody ? {} : undefined) });
        const got = classify(res.status, res.body.message, f);
        if (got !== want) mismatches.push(`${key} as ${c.key}: expected ${want}, got ${got}`);
        cells.push(got === want ? short[want] : `✗${got.slice(0, 12)}`);
      }
      rows.push(`| ${key} | ${route.permission} | ${cells.join(' | ')} |`);
    }
    console.log([`\nroute × role matrix (${db}): ok = passed authorization (2xx, 400 or 409)`, `| route | permission | ${CALLERS.map((c) => c.key).join(' | ')} |`, `|---|---|${CALLERS.map(() => '---').join('|')}|`, ...rows].join('\n'));
    expect(mismatches).toEqual([]);
  });

  it('every mutating route of the table left an audit row for the calls above (the request middleware: none can forget it)', async () => {
    const rows = await p.db.em.fork().find(AuditEventSchema, { action: { $like: 'http.%' } }, { fields: ['targetId', 'result', 'actorType'] });
    const seen = new Set(rows.map((r) => r.targetId));
    const mutating = routeTable(app).filter((r) => r.method !== 'get').map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(mutating.length).toBeGreaterThan(80);
    expect(mutating.filter((k) => !seen.has(k)), 'mutating routes without an audit row').toEqual([]);
    // Refusals are recorded with who was refused: anonymous 401s and the other tenant's 403/404s.
    expect(rows.some((r) => r.actorType === 'anonymous' && r.result === 'failure')).toBe(true);
  });
});
