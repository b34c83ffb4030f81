/**
 * The rehearsal of a sale at start (src/server/rehearsal.ts), through the real entry point: it
 * runs before the server listens, its buyers hear only `order` and `sold_out`, and it leaves
 * nothing behind, neither in the real database nor as a temporary database, and drops those a
 * server killed during its rehearsal left. A role that may not
 * create databases cannot rehearse: the server says so and serves all the same.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MainProcess } from './e2e/mainProcess.js';
import { createTestDatabase, withAdminClient, type TestDatabase } from './support/testDatabase.js';

const adminToken = 'rehearsal-e2e-admin-token';
const jwtSecret = 'rehearsal-e2e-secret-rehearsal-e2e-secret-0123';
const databases: TestDatabase[] = [];

/** The real entry point with the rehearsal of `buyers` buyers, on the database of `databaseUrl`. */
function startRehearsing(databaseUrl: string, buyers: number): MainProcess {
  return MainProcess.start({
    PORT: '0',
    DATABASE_URL: databaseUrl,
    SECKILL_ADMIN_TOKEN: adminToken,
    SECKILL_JWT_SECRET: jwtSecret,
    SECKILL_REHEARSAL_BUYERS: String(buyers),
    SECKILL_LOG_LEVEL: 'info',
  });
}

const rehearsalDatabaseNames = (url: string): Promise<string[]> =>
  withAdminClient(url, async (client) => (await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'seckill\\_rehearsal\\_%'")).rows.map((row) => row.datname));

afterAll(async () => {
  for (const database of databases) await database.drop();
});

describe('the rehearsal of a sale at start', () => {
  it('runs before the server listens, hears only order and sold_out, and leaves nothing behind, not even what a killed one left', async () => {
    const database = await createTestDatabase('e2e_rehearsal');
    databases.push(database);
    // What a server killed during its rehearsal leaves: a database nobody is connected to.
    const abandoned = `seckill_rehearsal_abandoned_${randomBytes(4).toString('hex')}`;
    await withAdminClient(inject('databaseUrl'), (client) => client.query(`CREATE DATABASE ${abandoned}`));
    expect(await rehearsalDatabaseNames(inject('databaseUrl'))).toContain(abandoned);
    const main = startRehearsing(database.url, 300);
    try {
      const port = await main.listening();
      const rehearsed = main.lines.findIndex((line) => line.msg.startsWith('rehearsed a sale'));
      const listening = main.lines.findIndex((line) => line.msg.startsWith('listening on'));
      expect(rehearsed).toBeGreaterThanOrEqual(0);
      expect(rehearsed).toBeLessThan(listening);
      // 300 buyers on 150 units, twice; each time the same 300 press again once it sold out.
      expect(main.lines[rehearsed]).toMatchObject({ buyers: 300, rounds: 2, replies: { order: 300, sold_out: 300 + 600 } });
      // Then 900 orders in-process, on 900 units for 1,800 buyers, and 900 more buyers once they sold out.
      expect(main.lines[rehearsed]!.engineReplies).toEqual({ order: 900, sold_out: 900 + 900 });
      expect(Object.keys(main.lines[rehearsed]!.replies as object).sort()).toEqual(['order', 'sold_out']);
      // Before them, the prelude, on an engine and a server of its own: 100 buyers on 50 units
      // once, then 300 orders in-process.
      expect(main.lines[rehearsed]!.prelude).toEqual({
        buyers: 100,
        rounds: 1,
        replies: { order: 50, sold_out: 50 + 100 },
        engineReplies: { order: 300, sold_out: 300 + 300 },
      });

      const items = await fetch(`http://127.0.0.1:${port}/admin/items`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(items.status).toBe(200);
      expect(await items.json()).toEqual([]);
      const stored = await withAdminClient(database.url, async (client) => {
        const journal = await client.query<{ batches: string }>('SELECT count(*) AS batches FROM seckill.journal_batch');
        return Number(journal.rows[0]!.batches);
      });
      expect(stored).toBe(0);
      expect(await rehearsalDatabaseNames(inject('databaseUrl'))).toEqual([]);
    } finally {
      main.child.kill('SIGTERM');
      await main.exited;
    }
  });

  it('is skipped with a warning when the role may not create databases, and the server serves all the same', async () => {
    const database = await createTestDatabase('e2e_rehearsal_role');
    databases.push(database);
    const role = `seckill_no_createdb_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await withAdminClient(inject('databaseUrl'), async (client) => {
      await client.query(`CREATE ROLE ${role} LOGIN NOCREATEDB PASSWORD '${password}'`);
      await client.query(`ALTER DATABASE ${client.escapeIdentifier(database.name)} OWNER TO ${role}`);
    });
    const url = new URL(database.url);
    url.username = role;
    url.password = password;
    const main = startRehearsing(url.toString(), 100);
    try {
      const port = await main.listening();
      const warning = main.lines.find((line) => line.msg.startsWith('could not rehearse a sale'));
      expect(warning?.level).toBe(40);
      expect(JSON.stringify(warning)).toMatch(/permission denied to create database/);
      const created = await fetch(`http://127.0.0.1:${port}/admin/items`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: '1', name: 'After a skipped rehearsal', sellerId: '1', stock: 5 }),
      });
      expect(created.status).toBe(201);
    } finally {
      main.child.kill('SIGTERM');
      await main.exited;
      await database.drop();
      await withAdminClient(inject('databaseUrl'), (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });
});
