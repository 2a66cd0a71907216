import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 20, VNC service auto-deployment: one row per allocation that asked for it (display, RFB
 * port, the encrypted VNC password, revealed-once), and `vnc.password_reset` for the roles that
 * may ask for a new VNC password: the customer's people (their own / the company's allocations)
 * and operators (admins have `*`).
 */
export class Migration20261202140000_vnc_services extends Migration {
  override name = 'Migration20261202140000_vnc_services';

  override up(): void | Promise<void> {
    this.addSql(`create table "vnc_services" ("allocation_id" uuid not null, "host_id" uuid not null, "os_username" varchar(64) not null, "status" text check ("status" in ('requested', 'running', 'removed')) not null default 'requested', "display" int null, "rfb_port" int null, "password_ciphertext" text null, "password_key_id" varchar(64) null, "password_version" int not null default 0, "password_revealed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("allocation_id"));`);
    this.addSql(`create index "vnc_services_host_id_index" on "vnc_services" ("host_id");`);
    this.addSql(
      `update "roles" set "permissions" = "permissions" || '["vnc.password_reset"]'::jsonb where "name" in ('customer_member', 'operator') and "builtin" = true and not ("permissions" @> '["vnc.password_reset"]'::jsonb);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "vnc_services" cascade;`);
    this.addSql(
      `update "roles" set "permissions" = (select coalesce(jsonb_agg(p), '[]'::jsonb) from jsonb_array_elements_text("permissions") p where p <> 'vnc.password_reset') where "name" in ('customer_member', 'operator') and "builtin" = true;`,
    );
  }
}
