/**
 * Applies the numbered migrations in `sql/` in order, each once, each in its own transaction.
 * An advisory lock makes concurrent starts against one database take turns instead of racing.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { packageRoot } from '../packageRoot.js';
import { inTransaction, schemaName } from './pools.js';

/** The package's `sql/` folder, beside its package.json in a checkout and in an installed package alike. */
const migrationsDirectory = path.join(packageRoot(), 'sql');
const migrationLockKey = 7_431_902_118;
const migrationTimeoutMs = 600_000;
/** The client's wait for a migration statement (pg reads `query_timeout` from the query too). */
const migrationWait = { query_timeout: migrationTimeoutMs + 1_000 } as object;

/** The migrations of an order database (src/orders/orderDatabases.ts), applied in its own schema. */
export const orderMigrationsDirectory = path.join(migrationsDirectory, 'orders');

/**
 * Applies the migrations of `directory` that `schema` has not seen; the pool's connections must
 * have `schema` first on their search path.
 */
export async function migrate(pool: pg.Pool, directory = migrationsDirectory, schema = schemaName): Promise<string[]> {
  const files = (await readdir(directory)).filter((name) => /^\d+_.+\.sql$/.test(name)).sort();
  const applied: string[] = [];
  await inTransaction(pool, async (client) => {
    // A migration may rewrite a large table: it is bounded by its own timeout, not by the pool's
    // statement timeout, which is sized for the engine's own statements.
    await client.query(`SET LOCAL statement_timeout = ${migrationTimeoutMs}`);
    await client.query({ text: 'SELECT pg_advisory_xact_lock($1)', values: [migrationLockKey], ...migrationWait });
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_migration (name text PRIMARY KEY, applied_at bigint NOT NULL)`,
    );
    const done = new Set(
      (await client.query<{ name: string }>(`SELECT name FROM ${schema}.schema_migration`)).rows.map((row) => row.name),
    );
    for (const file of files) {
      if (done.has(file)) continue;
      await client.query({ text: await readFile(path.join(directory, file), 'utf8'), ...migrationWait });
      await client.query(`INSERT INTO ${schema}.schema_migration (name, applied_at) VALUES ($1, $2)`, [file, Date.now()]);
      applied.push(file);
    }
  });
  return applied;
}
