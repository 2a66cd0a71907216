import { existsSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, startPostgres, type TestPostgres } from './postgres.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

function refusesTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('startPostgres', () => {
  let server: TestPostgres;
  const ownServer = !process.env.TEST_DATABASE_URL;

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves hostflow_test', async () => {
    if (ownServer) expect(server.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/hostflow_test$/);
    const [row] = await query<{ version: string; db: string }>(server.url, 'select version() as version, current_database() as db');
    expect(row?.version).toContain('PostgreSQL');
    if (ownServer) expect(row?.db).toBe('hostflow_test');
  });

  it('createDatabase creates a fresh, isolated database', async () => {
    const name = `hf_t_${Math.random().toString(36).slice(2, 10)}`;
    const url = await createDatabase(server.url, name);
    expect(new URL(url).pathname).toBe(`/${name}`);
    await query(url, 'create table t (x int); insert into t values (1)');
    expect(await query(url, 'select current_database() as db, count(*)::int as n from t')).toEqual([{ db: name, n: 1 }]);
    await expect(query(server.url, 'select * from t')).rejects.toThrow(/does not exist/);
    await expect(createDatabase(server.url, name)).rejects.toThrow(/already exists/);
    const again = await createDatabase(server.url, name, { replace: true });
    expect(await query(again, `select count(*)::int as n from pg_tables where tablename = 't'`)).toEqual([{ n: 0 }]);
    await expect(createDatabase(server.url, 'bad-name; drop')).rejects.toThrow(/invalid database name/);
  });

  it.skipIf(!ownServer)('stop() shuts the server down and removes its files', async () => {
    const other = await startPostgres();
    const port = Number(new URL(other.url).port);
    const dirs = await query<{ dir: string }>(other.url, `select current_setting('unix_socket_directories') as dir`);
    await other.stop();
    expect(await refusesTcp(port)).toBe(true);
    expect(existsSync(dirs[0]!.dir)).toBe(false);
    await other.stop(); // idempotent
  });
});
