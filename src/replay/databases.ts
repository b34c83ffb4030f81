/**
 * The databases `seckill replay` reads and writes: the same configuration as the server
 * (DATABASE_URL with SECKILL_INVENTORY_DATABASE_URLS, or the embedded PostgreSQL in
 * SECKILL_DATA_DIR; the order databases from SECKILL_ORDER_DATABASE_URLS or beside them). The
 * migrations are applied first, so a data directory written by an older version reads as the
 * engine would read it.
 */
import path from 'node:path';
import type pg from 'pg';
import { loadConfig } from '../config.js';
import { OrderDatabases } from '../orders/orderDatabases.js';
import { orderDatabaseUrlsFor } from '../orders/orderOptions.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../persistence/embeddedPostgres.js';
import { migrate } from '../persistence/migrations.js';
import { createPool } from '../persistence/pools.js';

export interface Databases {
  readonly description: string;
  readonly urls: readonly string[];
  /** Inventory databases, `[0]` the primary (the catalog). */
  readonly inventory: readonly pg.Pool[];
  readonly orders: OrderDatabases;
  close(): Promise<void>;
}

export async function openDatabases(): Promise<Databases> {
  const configuration = loadConfig();
  let embedded: EmbeddedPostgresHandle | undefined;
  let urls: string[];
  let description: string;
  const onEmbedded = (name: string): string => Object.assign(new URL(embedded!.connectionString), { pathname: `/${name}` }).toString();
  if (configuration.databaseUrl === undefined) {
    const dataDirectory = path.resolve(configuration.dataDirectory);
    embedded = await startEmbeddedPostgres({ dataDirectory });
    urls = [onEmbedded('seckill'), onEmbedded('seckill_inventory2')];
    description = `the embedded PostgreSQL in ${dataDirectory}`;
  } else {
    urls = [configuration.databaseUrl, ...configuration.inventoryDatabaseUrls];
    description = `${urls.length} inventory database(s) from DATABASE_URL`;
  }
  const inventory = urls.map((connectionString) => createPool({ connectionString, connectionsMax: 2, statementTimeoutMs: 0 }));
  let orders: OrderDatabases | undefined;
  try {
    for (const pool of inventory) await migrate(pool);
    const orderUrls = await orderDatabaseUrlsFor(
      { orderDatabaseUrls: configuration.orderDatabaseUrls },
      urls[0]!,
      embedded === undefined ? undefined : async (name) => onEmbedded(name),
    );
    orders = await OrderDatabases.open(orderUrls, configuration.orderTablesPerDatabase);
  } catch (error) {
    await Promise.all(inventory.map((pool) => pool.end()));
    await embedded?.stop();
    throw error;
  }
  const opened = orders;
  return {
    description,
    urls,
    inventory,
    orders: opened,
    async close() {
      await Promise.all(inventory.map((pool) => pool.end()));
      await opened.close();
      await embedded?.stop();
    },
  };
}
