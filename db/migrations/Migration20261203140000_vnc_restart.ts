import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 20, restarting a host's VNC service: `vnc.restart` (POST /allocations/:id/vnc/restart) for
 * the roles that may reset a VNC password: the customer's people (their own / the company's
 * allocations) and operators (admins have `*`).
 */
export class Migration20261203140000_vnc_restart extends Migration {
  override name = 'Migration20261203140000_vnc_restart';

  override up(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = "permissions" || '["vnc.restart"]'::jsonb where "name" in ('customer_member', 'operator') and "builtin" = true and not ("permissions" @> '["vnc.restart"]'::jsonb);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = (select coalesce(jsonb_agg(p), '[]'::jsonb) from jsonb_array_elements_text("permissions") p where p <> 'vnc.restart') where "name" in ('customer_member', 'operator') and "builtin" = true;`,
    );
  }
}
