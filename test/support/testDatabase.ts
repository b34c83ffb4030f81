/**
 * Gives each test file its own database on the shared test server, so files
 * can run in parallel without seeing each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export type TestDatabase = {
  /** Connection string of the new database. */
  url: string;
  name: string;
  /** Drops the database, disconnecting any clients that are still connected. */
  drop(): Promise<void>;
};

/** PostgreSQL truncates identifiers longer than this many bytes. */
const maximumNameLength = 63;

export async function createTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  const adminUrl = inject('databaseUrl');
  const cleanedPrefix = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'test';
  const suffix = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const name = `${cleanedPrefix.slice(0, maximumNameLength - suffix.length - 1)}_${suffix}`;

  await withAdminClient(adminUrl, (client) => client.query(`create database ${client.escapeIdentifier(name)}`));

  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    name,
    drop: () => {
      dropped ??= withAdminClient(adminUrl, async (client) => {
        await client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`);
      });
      return dropped;
    },
  };
}

/** Runs `work` on a client of `adminUrl`, and ends the client. */
export async function withAdminClient<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
