/**
 * The order databases: apart from the inventory databases, each holds its share of the buyer
 * dimension and of the seller dimension, in `tablesPerDatabase` numbered tables each, recent
 * and history. Order database `n` is the schema `seckill_orders_<n>` in the database at its URL,
 * so several order databases may also share one PostgreSQL database (the default beside a
 * `DATABASE_URL`: two schemas in it, as the contract lets the engine create the schemas it needs).
 *
 * This module owns their pools, applies their migrations (sql/orders/), makes the numbered
 * tables, and refuses a database that was cut to another shape.
 */
import type pg from 'pg';
import { StartupError } from '../errors.js';
import { migrate, orderMigrationsDirectory } from '../persistence/migrations.js';
import { createPool, inTransaction } from '../persistence/pools.js';
import type { MarkStore, TickLease } from './orderIdGenerator.js';
import { tableSuffix, type OrderLayout, type OrderPlace } from './orderIds.js';

/** Order databases and tables when the configuration names none: the embedded default. */
export const orderDatabasesDefault = 2;
export const tablesPerDatabaseDefault = 8;
/** Two digits name 100 places, so more tables than that would stay empty. */
export const tablesPerDatabaseMax = 100;
export const orderDatabasesMax = 100;

const layoutLockKey = 7_431_902_119;

/** Connections per order database: the projector, the history job, and the order queries. */
const connectionsPerDatabaseMax = 6;

export function orderSchema(databaseIndex: number): string {
  return `seckill_orders_${databaseIndex}`;
}

/** The tables of one dimension at one place. */
export interface DimensionTables {
  readonly recent: string;
  readonly history: string;
}

export type Dimension = 'buyer' | 'seller';

export function tablesAt(dimension: Dimension, tableIndex: number): DimensionTables {
  const stem = dimension === 'buyer' ? 'order_order' : 'order_seller';
  const suffix = tableSuffix(tableIndex);
  return { recent: `${stem}_${suffix}`, history: `${stem}_history_${suffix}` };
}

export class OrderDatabases implements MarkStore {
  private constructor(
    readonly layout: OrderLayout,
    /** One pool per order database, its schema on the search path. */
    readonly pools: readonly pg.Pool[],
  ) {}

  /** Opens, migrates and lays out the order databases; `urls[n]` holds order database `n`. */
  static async open(urls: readonly string[], tablesPerDatabase: number): Promise<OrderDatabases> {
    if (urls.length < 1 || urls.length > orderDatabasesMax) throw new RangeError(`${urls.length} order databases is not in 1..${orderDatabasesMax}`);
    if (!Number.isInteger(tablesPerDatabase) || tablesPerDatabase < 1 || tablesPerDatabase > tablesPerDatabaseMax) {
      throw new RangeError(`${tablesPerDatabase} tables per order database is not in 1..${tablesPerDatabaseMax}`);
    }
    const layout: OrderLayout = { databases: urls.length, tablesPerDatabase };
    const pools = urls.map((connectionString, databaseIndex) =>
      createPool({ connectionString, connectionsMax: connectionsPerDatabaseMax, schema: orderSchema(databaseIndex) }),
    );
    try {
      for (const [databaseIndex, pool] of pools.entries()) {
        await migrate(pool, orderMigrationsDirectory, orderSchema(databaseIndex));
        await layOut(pool, databaseIndex, layout);
      }
    } catch (error) {
      await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
      throw error;
    }
    return new OrderDatabases(layout, pools);
  }

  pool(databaseIndex: number): pg.Pool {
    const pool = this.pools[databaseIndex];
    if (pool === undefined) throw new RangeError(`no order database ${databaseIndex}`);
    return pool;
  }

  tables(dimension: Dimension, place: OrderPlace): DimensionTables {
    return tablesAt(dimension, place.tableIndex);
  }

  /** The high-water mark of order id ticks lives in order database 0 (orderIdGenerator.ts). */
  async lease(node: number, floor: number, length: number): Promise<TickLease> {
    const result = await this.pool(0).query<{ mark: string }>(
      `INSERT INTO order_id_mark (node, mark) VALUES ($1, $2::bigint + $3::bigint)
       ON CONFLICT (node) DO UPDATE SET mark = greatest(order_id_mark.mark, $2::bigint) + $3::bigint
       RETURNING mark`,
      [node, floor, length],
    );
    const end = Number(result.rows[0]!.mark);
    return { start: end - length, end };
  }

  async reachable(): Promise<boolean> {
    try {
      await Promise.all(this.pools.map((pool) => pool.query('SELECT 1')));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.end()));
  }
}

/** Records the database's shape the first time, refuses another one later, and makes its tables. */
async function layOut(pool: pg.Pool, databaseIndex: number, layout: OrderLayout): Promise<void> {
  await pool.query(
    `INSERT INTO order_layout (database_index, databases, tables_per_database) VALUES ($1, $2, $3)
     ON CONFLICT (singleton) DO NOTHING`,
    [databaseIndex, layout.databases, layout.tablesPerDatabase],
  );
  const stored = (
    await pool.query<{ database_index: number; databases: number; tables_per_database: number }>(
      'SELECT database_index, databases, tables_per_database FROM order_layout',
    )
  ).rows[0]!;
  if (
    stored.database_index !== databaseIndex ||
    stored.databases !== layout.databases ||
    stored.tables_per_database !== layout.tablesPerDatabase
  ) {
    throw new StartupError(
      `order database ${databaseIndex} (schema ${orderSchema(databaseIndex)}) was made as database ` +
        `${stored.database_index} of ${stored.databases} × ${stored.tables_per_database} tables, but the configuration ` +
        `says database ${databaseIndex} of ${layout.databases} × ${layout.tablesPerDatabase}; orders are placed by ` +
        `their digits, so they would be looked for in the wrong tables; fix: configure the order databases as they were made`,
    );
  }
  const statements: string[] = [];
  for (let tableIndex = 0; tableIndex < layout.tablesPerDatabase; tableIndex++) {
    for (const dimension of ['buyer', 'seller'] as const) {
      const template = dimension === 'buyer' ? 'order_order_template' : 'order_seller_template';
      const { recent, history } = tablesAt(dimension, tableIndex);
      statements.push(`CREATE TABLE IF NOT EXISTS ${recent} (LIKE ${template} INCLUDING ALL)`);
      statements.push(`CREATE TABLE IF NOT EXISTS ${history} (LIKE ${template} INCLUDING ALL)`);
    }
  }
  // Engines starting at once on shared order databases take turns, as their migrations do.
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [layoutLockKey]);
    await client.query(statements.join(';\n'));
  });
}
