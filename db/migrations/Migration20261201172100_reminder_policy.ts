import { Migration } from '@mikro-orm/migrations';

/**
 * Lease reminder offsets as policy: a customer's own list and the list an allocation was created
 * with (minutes before the end, largest first; null = the default 7/3/1 days). Lease events of
 * such reminders are `reminder-<n>d|h|m`, so the fixed kind list gives way to a pattern.
 */
export class Migration20261201172100_reminder_policy extends Migration {

  override name = 'Migration20261201172100_reminder_policy';

  override up(): void | Promise<void> {
    this.addSql(`alter table "customers" add column "reminder_offsets" jsonb null;`);
    this.addSql(`alter table "allocations" add column "reminder_offsets" jsonb null;`);
    this.addSql(`alter table "lease_events" drop constraint if exists "lease_events_kind_check";`);
    this.addSql(`alter table "lease_events" alter column "kind" type varchar(40);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "customers" drop column "reminder_offsets";`);
    this.addSql(`alter table "allocations" drop column "reminder_offsets";`);
    this.addSql(`alter table "lease_events" alter column "kind" type text;`);
  }

}
