import { Migration } from '@mikro-orm/migrations';

/**
 * Customer people may request OS accounts on the hosts allocated to their customer (issue 11: the
 * account-opening rule enforces the host restriction and the privilege policy), and see their own
 * requests (row scope: own rows). The built-in `customer_member` role gets `account_opening.create`
 * and `account_opening.read`; `customer_owner` inherits them.
 */
export class Migration20261201133000_customer_account_openings extends Migration {
  override name = 'Migration20261201133000_customer_account_openings';

  override up(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = "permissions" || '["account_opening.create", "account_opening.read"]'::jsonb where "name" = 'customer_member' and "builtin" = true and not ("permissions" @> '["account_opening.create"]'::jsonb);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = (select coalesce(jsonb_agg(p), '[]'::jsonb) from jsonb_array_elements_text("permissions") p where p not in ('account_opening.create', 'account_opening.read')) where "name" = 'customer_member' and "builtin" = true;`,
    );
  }
}
