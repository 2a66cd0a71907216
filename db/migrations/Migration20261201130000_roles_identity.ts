import { Migration } from '@mikro-orm/migrations';

/**
 * Identity × roles as data. The roles migration renamed the old `customer` role on users only;
 * API keys (identity) carry role names too, and a key's roles are intersected with its owner's on
 * every request, so a key still listing `customer` would act with no role at all. Renamed here the
 * same way (`customer` → `customer_member`).
 *
 * The permissions added with identity and registration (user.unlock, session.manage,
 * api_key.manage, role_grant.manage, department.manage, registration.approve_roles) go to no
 * built-in role but `admin`, whose `*` already covers them: the seeded rows need no change (those
 * routes were admin-only before; handing them to other roles is a decision for PATCH /roles).
 */
export class Migration20261201130000_roles_identity extends Migration {
  override name = 'Migration20261201130000_roles_identity';

  override up(): void | Promise<void> {
    this.addSql(
      `update "api_keys" set "roles" = (select coalesce(jsonb_agg(case when r = 'customer' then 'customer_member' else r end), '[]'::jsonb) from jsonb_array_elements_text("roles") r) where "roles" @> '["customer"]'::jsonb;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(
      `update "api_keys" set "roles" = (select coalesce(jsonb_agg(case when r in ('customer_member', 'customer_owner') then 'customer' else r end), '[]'::jsonb) from jsonb_array_elements_text("roles") r) where "roles" @> '["customer_member"]'::jsonb or "roles" @> '["customer_owner"]'::jsonb;`,
    );
  }
}
