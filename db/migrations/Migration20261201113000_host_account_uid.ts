import { Migration } from '@mikro-orm/migrations';

/** The OS uid of an account, recorded while it exists, so reclaim can still look for (and verify the absence of) what that uid left once the name is gone. */
export class Migration20261201113000_host_account_uid extends Migration {

  override name = 'Migration20261201113000_host_account_uid';

  override up(): void | Promise<void> {
    this.addSql(`alter table "host_accounts" add column "uid" int null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "host_accounts" drop column "uid";`);
  }

}
