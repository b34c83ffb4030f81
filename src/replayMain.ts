/**
 * `npm run replay` — checks every projection against the journals, and with `--repair`
 * rebuilds what disagrees. Reads the same configuration as the server: DATABASE_URL with
 * SECKILL_INVENTORY_DATABASE_URLS, or the embedded PostgreSQL in SECKILL_DATA_DIR, and the
 * order databases (SECKILL_ORDER_DATABASE_URLS, SECKILL_ORDER_TABLES_PER_DATABASE).
 * Exits 0 when everything agrees (or was repaired), 1 when something does not, 2 on error.
 */
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './persistence/embeddedPostgres.js';
import { createPool } from './persistence/pools.js';
import { replayJournals } from './replay.js';
import { loadConfig } from './config.js';
import { OrderDatabases } from './orders/orderDatabases.js';
import { orderDatabaseUrlsFor } from './orders/orderOptions.js';

async function main(): Promise<number> {
  const repair = process.argv.includes('--repair');
  const configuration = loadConfig();
  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrls: string[];
  if (configuration.databaseUrl === undefined) {
    embedded = await startEmbeddedPostgres({ dataDirectory: path.resolve(configuration.dataDirectory) });
    const withDatabase = (name: string) => Object.assign(new URL(embedded!.connectionString), { pathname: `/${name}` }).toString();
    databaseUrls = [withDatabase('seckill'), withDatabase('seckill_inventory2')];
  } else {
    databaseUrls = [configuration.databaseUrl, ...configuration.inventoryDatabaseUrls];
  }
  const pools: pg.Pool[] = databaseUrls.map((connectionString) => createPool({ connectionString, connectionsMax: 2, statementTimeoutMs: 0 }));
  const orderDatabaseUrls = await orderDatabaseUrlsFor(
    { orderDatabaseUrls: configuration.orderDatabaseUrls },
    databaseUrls[0]!,
    embedded === undefined ? undefined : async (name) => Object.assign(new URL(embedded!.connectionString), { pathname: `/${name}` }).toString(),
  );
  const orderDatabases = await OrderDatabases.open(orderDatabaseUrls, configuration.orderTablesPerDatabase);
  try {
    const report = await replayJournals(pools, orderDatabases, { repair });
    for (const slice of report.slices) {
      const state = slice.problems.length === 0 ? 'ok' : slice.repaired ? 'repaired' : 'MISMATCH';
      console.log(
        `item ${slice.itemId} slice ${slice.sliceIndex} (database ${slice.databaseIndex}): ${slice.events} events, ` +
          `stock ${slice.journal.stock} = available ${slice.journal.available} + reserved ${slice.journal.reserved} + ` +
          `sold ${slice.journal.sold}, ${slice.journal.orders} orders — ${state}`,
      );
      for (const problem of slice.problems) console.log(`  ${problem}`);
    }
    for (const [itemId, quantity] of Object.entries(report.inTransfer)) {
      console.log(`item ${itemId}: ${quantity} units in transfer between slices (the engine delivers them at its next start)`);
    }
    console.log(`${report.items} items, ${report.slices.length} slices: ${report.consistent ? 'consistent' : 'NOT consistent'}`);
    return report.consistent ? 0 : 1;
  } finally {
    await Promise.all(pools.map((pool) => pool.end()));
    await orderDatabases.close();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
