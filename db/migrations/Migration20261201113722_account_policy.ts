import { Migration } from '@mikro-orm/migrations';

export class Migration20261201113722_account_policy extends Migration {

  override name = 'Migration20261201113722_account_policy';

  override up(): void | Promise<void> {
    this.addSql(`alter table "env_templates" add "account_policy" jsonb null;`);

    this.addSql(`alter table "hosts" add "account_policy" jsonb null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "env_templates" drop column "account_policy";`);

    this.addSql(`alter table "hosts" drop column "account_policy";`);
  }

}
