import { Migration } from '@mikro-orm/migrations';

/**
 * Command records (issue 11): the full, secret-redacted and bounded stdout/stderr of each remote
 * command that changed a host, written by the executor layer; read through
 * GET /api/v1/hosts/:id/commands with the new permission `host.command_read`, which the built-in
 * `operator` role gets (admin has every permission).
 */
export class Migration20261201140000_command_records extends Migration {
  override name = 'Migration20261201140000_command_records';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "command_records" ("id" uuid not null, "host_id" uuid not null, "workflow_id" varchar(300) null, "run_id" varchar(64) null, "activity_type" varchar(100) null, "attempt" int null, "builder" varchar(100) not null, "command_sha256" varchar(64) not null, "stdin" boolean not null default false, "exit_code" int null, "error" varchar(2000) null, "stdout" text not null default '', "stderr" text not null default '', "stdout_bytes" int not null default 0, "stderr_bytes" int not null default 0, "truncated" boolean not null default false, "started_at" timestamptz not null, "duration_ms" int not null, primary key ("id"));`,
    );
    this.addSql(`create index "command_records_workflow_id_index" on "command_records" ("workflow_id");`);
    this.addSql(`create index "command_records_host_id_started_at_index" on "command_records" ("host_id", "started_at");`);
    this.addSql(`alter table "command_records" add constraint "command_records_host_id_foreign" foreign key ("host_id") references "hosts" ("id") on delete cascade;`);
    this.addSql(
      `update "roles" set "permissions" = "permissions" || '["host.command_read"]'::jsonb where "name" = 'operator' and "builtin" = true and not ("permissions" @> '["host.command_read"]'::jsonb);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "command_records" cascade;`);
    this.addSql(
      `update "roles" set "permissions" = (select coalesce(jsonb_agg(p), '[]'::jsonb) from jsonb_array_elements_text("permissions") p where p <> 'host.command_read') where "name" = 'operator' and "builtin" = true;`,
    );
  }
}
