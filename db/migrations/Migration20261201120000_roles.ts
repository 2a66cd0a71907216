import { Migration } from '@mikro-orm/migrations';

/**
 * Roles become data. Seeds the built-in roles (the same list as BUILTIN_ROLES in
 * api/authz/permissions.ts, copied here because a migration must not change when code does) and
 * renames the old `customer` role of existing users to `customer_member`.
 */
const BUILTIN: Array<[name: string, description: string, parent: string | null, permissions: string[]]> = [
  ['admin', 'Platform administrator: everything', null, ['*']],
  ['viewer', 'Read-only staff: sees the fleet, allocations and requests; contacts masked', null, ['scope.all', 'host.read', 'onboarding.read', 'remote_access.read', 'template.read', 'allocation.read', 'account_opening.read', 'customer.read', 'cloud_user.read', 'report.read', 'role.read']],
  ['operator', 'Runs the fleet: hosts, onboarding, templates, customers, allocations, managed accounts', 'viewer', ['host.write', 'host_group.manage', 'template.write', 'allocation.create', 'allocation.manage', 'allocation.return', 'account_opening.create', 'account_opening.manage', 'cloud_user.manage', 'customer.write', 'ssh_key.manage', 'session.connect', 'pii.read']],
  ['approver', 'Decides account opening requests (never their own)', 'viewer', ['account_opening.approve', 'account_opening.create', 'pii.read']],
  ['auditor', 'Reads and exports the audit trail and the user list', 'viewer', ['audit.read', 'audit.export', 'user.read']],
  ['requester', 'Requests OS accounts on hosts and reveals their own passwords', null, ['host.read', 'template.read', 'account_opening.create', 'account_opening.read', 'credential.reveal', 'ssh_key.manage']],
  ['customer_member', "A customer's person: sees only what is allocated to them, manages their own SSH keys", null, ['host.read', 'allocation.read', 'allocation.return', 'session.connect', 'credential.reveal', 'ssh_key.manage']],
  ['customer_owner', "A customer's owner: everything a member can, for the whole company, and its member list", 'customer_member', ['scope.company', 'customer.read', 'pii.read']],
];

const lit = (s: string | null) => (s === null ? 'null' : `'${s.replace(/'/g, "''")}'`);

export class Migration20261201120000_roles extends Migration {
  override name = 'Migration20261201120000_roles';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "roles" ("name" varchar(64) not null, "description" varchar(500) not null default '', "parent" varchar(64) null, "permissions" jsonb not null default '[]', "host_group_ids" jsonb not null default '[]', "builtin" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("name"));`,
    );
    for (const [name, description, , permissions] of BUILTIN) {
      this.addSql(`insert into "roles" ("name", "description", "parent", "permissions", "builtin", "created_at", "updated_at") values (${lit(name)}, ${lit(description)}, null, ${lit(JSON.stringify(permissions))}::jsonb, true, now(), now());`);
    }
    for (const [name, , parent] of BUILTIN) if (parent) this.addSql(`update "roles" set "parent" = ${lit(parent)} where "name" = ${lit(name)};`);
    this.addSql(
      `update "users" set "roles" = (select coalesce(jsonb_agg(case when r = 'customer' then 'customer_member' else r end), '[]'::jsonb) from jsonb_array_elements_text("roles") r) where "roles" @> '["customer"]'::jsonb;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(
      `update "users" set "roles" = (select coalesce(jsonb_agg(case when r in ('customer_member', 'customer_owner') then 'customer' else r end), '[]'::jsonb) from jsonb_array_elements_text("roles") r);`,
    );
    this.addSql(`drop table if exists "roles" cascade;`);
  }
}
