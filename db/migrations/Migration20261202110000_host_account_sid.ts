import { Migration } from '@mikro-orm/migrations';

/**
 * A Windows account's SID while it existed: reclaim finds the processes, the profile and the
 * scheduled tasks the tenant left by SID once the name is gone (what `uid` is on Linux).
 */
export class Migration20261202110000_host_account_sid extends Migration {
  override name = 'Migration20261202110000_host_account_sid';

  override up(): void | Promise<void> {
    this.addSql(`alter table "host_accounts" add column "sid" varchar(200) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "host_accounts" drop column "sid";`);
  }
}
