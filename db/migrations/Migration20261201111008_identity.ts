import { Migration } from '@mikro-orm/migrations';

export class Migration20261201111008_identity extends Migration {

  override name = 'Migration20261201111008_identity';

  override up(): void | Promise<void> {
    this.addSql(`create table "api_keys" ("id" uuid not null, "user_id" uuid not null, "name" varchar(100) not null, "prefix" varchar(16) not null, "key_hash" varchar(64) not null, "roles" jsonb not null, "expires_at" timestamptz null, "last_used_at" timestamptz null, "last_used_ip" varchar(64) null, "revoked_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "api_keys_user_id_index" on "api_keys" ("user_id");`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`create table "mfa_email_codes" ("id" uuid not null, "user_id" uuid not null, "code_hash" varchar(64) not null, "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "mfa_email_codes_user_id_index" on "mfa_email_codes" ("user_id");`);

    this.addSql(`create table "login_events" ("id" uuid not null, "kind" text not null, "user_id" uuid null, "username" varchar(64) null, "session_id" uuid null, "ip" varchar(64) null, "user_agent" varchar(255) null, "reason" varchar(64) null, "security_event" boolean not null default false, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "login_events_kind_index" on "login_events" ("kind");`);
    this.addSql(`create index "login_events_user_id_index" on "login_events" ("user_id");`);
    this.addSql(`create index "login_events_created_at_index" on "login_events" ("created_at");`);

    this.addSql(`create table "login_locks" ("id" uuid not null, "scope" text not null, "subject" varchar(64) not null, "failures" int not null default 0, "window_started_at" timestamptz not null, "locked_until" timestamptz null, primary key ("id"));`);
    this.addSql(`alter table "login_locks" add constraint "login_locks_scope_subject_unique" unique ("scope", "subject");`);

    this.addSql(`create table "password_history" ("id" uuid not null, "user_id" uuid not null, "password_hash" varchar(200) not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "password_history_user_id_index" on "password_history" ("user_id");`);

    this.addSql(`create table "mfa_recovery_codes" ("id" uuid not null, "user_id" uuid not null, "code_hash" varchar(64) not null, "used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "mfa_recovery_codes_user_id_index" on "mfa_recovery_codes" ("user_id");`);
    this.addSql(`alter table "mfa_recovery_codes" add constraint "mfa_recovery_codes_code_hash_unique" unique ("code_hash");`);

    this.addSql(`create table "refresh_tokens" ("id" uuid not null, "session_id" uuid not null, "token_hash" varchar(64) not null, "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "refresh_tokens_session_id_index" on "refresh_tokens" ("session_id");`);
    this.addSql(`alter table "refresh_tokens" add constraint "refresh_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`create table "sessions" ("id" uuid not null, "user_id" uuid not null, "user_agent" varchar(255) null, "ip" varchar(64) null, "mfa_at" timestamptz null, "restricted" text null, "created_at" timestamptz not null, "last_seen_at" timestamptz not null, "revoked_at" timestamptz null, "revoke_reason" varchar(32) null, primary key ("id"));`);
    this.addSql(`create index "sessions_user_id_index" on "sessions" ("user_id");`);

    this.addSql(`alter table "users" drop constraint "users_api_token_hash_unique";`);
    this.addSql(`alter table "users" drop column "api_token_hash";`);
    this.addSql(`alter table "users" add "password_changed_at" timestamptz null, add "totp_secret_ciphertext" text null, add "totp_enabled_at" timestamptz null, add "totp_last_step" bigint null, add "mfa_email_enabled_at" timestamptz null;`);

    this.addSql(`alter table "login_events" add constraint "login_events_kind_check" check ("kind" in ('login_success', 'login_failure', 'login_locked', 'mfa_required', 'mfa_failure', 'mfa_success', 'refresh_reuse', 'logout', 'session_revoked', 'password_changed', 'password_reset_requested', 'password_reset', 'unlock'));`);

    this.addSql(`alter table "login_locks" add constraint "login_locks_scope_check" check ("scope" in ('account', 'ip'));`);

    this.addSql(`alter table "sessions" add constraint "sessions_restricted_check" check ("restricted" in ('password_change', 'mfa_enrollment'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "api_keys" cascade;`);
    this.addSql(`drop table if exists "mfa_email_codes" cascade;`);
    this.addSql(`drop table if exists "login_events" cascade;`);
    this.addSql(`drop table if exists "login_locks" cascade;`);
    this.addSql(`drop table if exists "password_history" cascade;`);
    this.addSql(`drop table if exists "mfa_recovery_codes" cascade;`);
    this.addSql(`drop table if exists "refresh_tokens" cascade;`);
    this.addSql(`drop table if exists "sessions" cascade;`);

    this.addSql(`alter table "users" drop column "password_changed_at", drop column "totp_secret_ciphertext", drop column "totp_enabled_at", drop column "totp_last_step", drop column "mfa_email_enabled_at";`);
    this.addSql(`alter table "users" add "api_token_hash" varchar(64) null;`);
    this.addSql(`alter table "users" add constraint "users_api_token_hash_unique" unique ("api_token_hash");`);
  }

}
