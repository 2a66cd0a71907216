import { Migration } from '@mikro-orm/migrations';

/** The notification center (issue 15): send log, endpoints, subscriptions, templates, unsubscribes, preferences. */
export class Migration20261201142000_notify_center extends Migration {

  override name = 'Migration20261201142000_notify_center';

  override up(): void | Promise<void> {
    this.addSql(`create table "notification_attempts" ("id" uuid not null, "notification_id" uuid not null, "attempt" int not null, "status" text not null, "response" varchar(1000) null, "latency_ms" int null, "at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "notification_attempts_notification_id_index" on "notification_attempts" ("notification_id");`);

    this.addSql(`create table "notification_endpoints" ("id" uuid not null, "name" varchar(100) not null, "kind" text not null, "url_display" varchar(500) not null, "url_ciphertext" text not null, "secret_ciphertext" text null, "previous_secret_ciphertext" text null, "previous_secret_until" timestamptz null, "config" jsonb not null default '{}', "created_at" timestamptz not null, "rotated_at" timestamptz null, primary key ("id"));`);
    this.addSql(`alter table "notification_endpoints" add constraint "notification_endpoints_name_unique" unique ("name");`);

    this.addSql(`create table "notification_preferences" ("user_id" uuid not null, "language" varchar(10) not null, "updated_at" timestamptz not null, primary key ("user_id"));`);

    this.addSql(`create table "notification_subscriptions" ("id" uuid not null, "event" varchar(100) not null, "channel" text not null, "subject_type" text not null, "subject_id" varchar(100) not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "notification_subscriptions" add constraint "notification_subscriptions_event_channel_subject__24453_unique" unique ("event", "channel", "subject_type", "subject_id");`);

    this.addSql(`create table "notification_templates" ("id" uuid not null, "event" varchar(100) not null, "channel" text not null, "language" varchar(10) not null, "version" int not null, "subject" varchar(300) not null, "body" text not null, "created_by" varchar(100) null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "notification_templates" add constraint "notification_templates_event_channel_language_version_unique" unique ("event", "channel", "language", "version");`);

    this.addSql(`create table "notification_unsubscribes" ("id" uuid not null, "recipient" varchar(255) not null, "event" varchar(100) not null, "channel" text not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "notification_unsubscribes" add constraint "notification_unsubscribes_recipient_event_channel_unique" unique ("recipient", "event", "channel");`);

    this.addSql(`create table "notify_action_uses" ("jti" varchar(64) not null, "used_by" uuid not null, "action" varchar(50) not null, "at" timestamptz not null, primary key ("jti"));`);

    this.addSql(`create table "notify_secrets" ("name" varchar(50) not null, "ciphertext" text not null, "created_at" timestamptz not null, primary key ("name"));`);

    this.addSql(`alter table "notifications" drop constraint "notifications_channel_check";`);
    this.addSql(`alter table "notifications" drop constraint "notifications_status_check";`);
    this.addSql(`alter table "notifications" add "event" varchar(100) null, add "user_id" uuid null, add "endpoint_id" uuid null, add "language" varchar(10) not null default 'en', add "template_version" int not null default 0, add "html" text null, add "payload" jsonb null, add "attempts" int not null default 0, add "duplicates" int not null default 0, add "provider_response" varchar(1000) null, add "latency_ms" int null, add "read_at" timestamptz null;`);
    this.addSql(`alter table "notifications" alter column "status" set default 'queued';`);
    // Rows from before the center: pending → queued, skipped → suppressed (with their reason in detail).
    this.addSql(`update "notifications" set "status" = 'queued' where "status" = 'pending';`);
    this.addSql(`update "notifications" set "status" = 'suppressed' where "status" = 'skipped';`);
    this.addSql(`create index "notifications_event_index" on "notifications" ("event");`);
    this.addSql(`create index "notifications_user_id_index" on "notifications" ("user_id");`);
    this.addSql(`alter table "notifications" add constraint "notifications_channel_check" check ("channel" in ('email', 'inbox', 'slack', 'webhook', 'dingtalk', 'wecom', 'feishu', 'sms'));`);
    this.addSql(`alter table "notifications" add constraint "notifications_status_check" check ("status" in ('queued', 'sent', 'failed', 'suppressed'));`);

    this.addSql(`alter table "notification_attempts" add constraint "notification_attempts_status_check" check ("status" in ('sent', 'failed', 'suppressed', 'deduplicated'));`);

    this.addSql(`alter table "notification_endpoints" add constraint "notification_endpoints_kind_check" check ("kind" in ('webhook', 'slack', 'dingtalk', 'wecom', 'feishu'));`);

    this.addSql(`alter table "notification_subscriptions" add constraint "notification_subscriptions_channel_check" check ("channel" in ('email', 'inbox', 'slack', 'webhook', 'dingtalk', 'wecom', 'feishu', 'sms'));`);
    this.addSql(`alter table "notification_subscriptions" add constraint "notification_subscriptions_subject_type_check" check ("subject_type" in ('user', 'role', 'customer', 'endpoint'));`);

    this.addSql(`alter table "notification_templates" add constraint "notification_templates_channel_check" check ("channel" in ('email', 'inbox', 'slack', 'webhook', 'dingtalk', 'wecom', 'feishu', 'sms'));`);

    this.addSql(`alter table "notification_unsubscribes" add constraint "notification_unsubscribes_channel_check" check ("channel" in ('email', 'inbox', 'slack', 'webhook', 'dingtalk', 'wecom', 'feishu', 'sms'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "notification_attempts" cascade;`);
    this.addSql(`drop table if exists "notification_endpoints" cascade;`);
    this.addSql(`drop table if exists "notification_preferences" cascade;`);
    this.addSql(`drop table if exists "notification_subscriptions" cascade;`);
    this.addSql(`drop table if exists "notification_templates" cascade;`);
    this.addSql(`drop table if exists "notification_unsubscribes" cascade;`);
    this.addSql(`drop table if exists "notify_action_uses" cascade;`);
    this.addSql(`drop table if exists "notify_secrets" cascade;`);

    this.addSql(`drop index "notifications_event_index";`);
    this.addSql(`drop index "notifications_user_id_index";`);
    this.addSql(`alter table "notifications" drop constraint "notifications_channel_check";`);
    this.addSql(`alter table "notifications" drop constraint "notifications_status_check";`);
    this.addSql(`alter table "notifications" drop column "event", drop column "user_id", drop column "endpoint_id", drop column "language", drop column "template_version", drop column "html", drop column "payload", drop column "attempts", drop column "duplicates", drop column "provider_response", drop column "latency_ms", drop column "read_at";`);
    this.addSql(`alter table "notifications" alter column "status" set default 'pending';`);
    this.addSql(`delete from "notifications" where "channel" not in ('email', 'slack', 'webhook');`);
    this.addSql(`update "notifications" set "status" = 'pending' where "status" = 'queued';`);
    this.addSql(`update "notifications" set "status" = 'skipped' where "status" = 'suppressed';`);
    this.addSql(`alter table "notifications" add constraint "notifications_channel_check" check ("channel" in ('email', 'slack', 'webhook'));`);
    this.addSql(`alter table "notifications" add constraint "notifications_status_check" check ("status" in ('pending', 'sent', 'skipped', 'failed'));`);
  }

}
