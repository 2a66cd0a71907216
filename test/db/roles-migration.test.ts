// The roles migration on a database that already has users with the old `customer` role: they
// become `customer_member`, the built-in roles are seeded, and down() reverses it.
import { describe, expect, it } from 'vitest';
import { initORM } from '../../db/orm.js';

describe('roles migration', () => {
  it('renames the old customer role to customer_member and seeds the built-in roles', async () => {
    const db = await initORM({ pgliteDir: 'memory://' }, { migrate: false });
    try {
      await db.orm.migrator.up({ to: 'Migration20261201110221_password_tokens' });
      const conn = db.em.getConnection();
      await conn.execute(`insert into users (id, username, roles, created_at, must_change_password) values (gen_random_uuid(), 'ana', '["customer"]', now(), false), (gen_random_uuid(), 'bob', '["admin", "approver"]', now(), false)`);
      await db.orm.migrator.up();
      const users = await conn.execute<Array<{ username: string; roles: string[] }>>(`select username, roles from users order by username`);
      expect(users.map((u) => [u.username, u.roles])).toEqual([
        ['ana', ['customer_member']],
        ['bob', ['admin', 'approver']],
      ]);
      const roles = await conn.execute<Array<{ name: string; parent: string | null }>>(`select name, parent from roles where builtin order by name`);
      expect(roles.map((r) => r.name)).toEqual(['admin', 'approver', 'auditor', 'customer_member', 'customer_owner', 'operator', 'requester', 'viewer']);
      expect(roles.find((r) => r.name === 'customer_owner')!.parent).toBe('customer_member');
      await db.orm.migrator.down({ to: 'Migration20261201110221_password_tokens' });
      const back = await conn.execute<Array<{ roles: string[] }>>(`select roles from users where username = 'ana'`);
      expect(back[0]!.roles).toEqual(['customer']);
    } finally {
      await db.close();
    }
  });
});
