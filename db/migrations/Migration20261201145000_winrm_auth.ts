import { Migration } from '@mikro-orm/migrations';

/**
 * WinRM authentication per host (issue 18): `winrm_auth` negotiate (Kerberos when configured, else
 * NTLM) | ntlm | kerberos | basic, and `winrm_allow_unencrypted_basic` (Basic over plain HTTP, off
 * unless an admin sets it; audited). New hosts default to negotiate. Windows hosts that exist
 * already were reached with Basic, so they keep it — over HTTP only where they were already on HTTP —
 * and nothing running stops working; an operator moves them to negotiate with PATCH /hosts/:id.
 */
export class Migration20261201145000_winrm_auth extends Migration {
  override name = 'Migration20261201145000_winrm_auth';

  override up(): void | Promise<void> {
    this.addSql(`alter table "hosts" add column "winrm_auth" text not null default 'negotiate';`);
    this.addSql(`alter table "hosts" add constraint "hosts_winrm_auth_check" check ("winrm_auth" in ('negotiate', 'ntlm', 'kerberos', 'basic'));`);
    this.addSql(`alter table "hosts" add column "winrm_allow_unencrypted_basic" boolean not null default false;`);
    this.addSql(`update "hosts" set "winrm_auth" = 'basic', "winrm_allow_unencrypted_basic" = not "winrm_https" where "os" = 'windows';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "hosts" drop column "winrm_allow_unencrypted_basic";`);
    this.addSql(`alter table "hosts" drop constraint "hosts_winrm_auth_check";`);
    this.addSql(`alter table "hosts" drop column "winrm_auth";`);
  }
}
