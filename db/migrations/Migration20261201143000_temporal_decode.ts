import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 16: the Temporal Web UI's codec endpoint decodes payloads for people allowed to read runs'
 * business data. `temporal.decode` goes to the built-in `auditor` role (admins have `*`); other
 * roles get it only by a decision through PATCH /roles.
 */
export class Migration20261201143000_temporal_decode extends Migration {
  override name = 'Migration20261201143000_temporal_decode';

  override up(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = "permissions" || '["temporal.decode"]'::jsonb where "name" = 'auditor' and "builtin" = true and not ("permissions" @> '["temporal.decode"]'::jsonb);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(
      `update "roles" set "permissions" = (select coalesce(jsonb_agg(p), '[]'::jsonb) from jsonb_array_elements_text("permissions") p where p <> 'temporal.decode') where "name" = 'auditor' and "builtin" = true;`,
    );
  }
}
