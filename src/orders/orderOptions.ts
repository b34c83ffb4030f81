/**
 * The engine's options about orders, and where the order databases are when none are named.
 */
import { orderDatabasesDefault } from './orderDatabases.js';
import type { ProjectionReport } from './projector.js';

export interface OrderOptions {
  /**
   * Order database `n` is at `orderDatabaseUrls[n]` (in its schema `seckill_orders_<n>`). Unset:
   * two order databases; on the embedded PostgreSQL the databases `seckill_orders_0` and
   * `seckill_orders_1`, beside a `databaseUrl` two schemas in that database.
   */
  readonly orderDatabaseUrls?: readonly string[] | undefined;
  /** Tables per order database, in each dimension; default 8. */
  readonly orderTablesPerDatabase?: number | undefined;
  /** Orders older than this move to the history tables; default 90 days. */
  readonly orderHistoryAfterMs?: number | undefined;
  /** Orders the history job moves per transaction; default 1,000. */
  readonly orderHistoryBatchRows?: number | undefined;
  /** Time between two runs of the history job, on the engine's clock; default an hour. */
  readonly orderHistoryIntervalMs?: number | undefined;
  /** Acknowledged orders kept in memory until projected, for read-your-writes; default 500,000. */
  readonly pendingOrdersMax?: number | undefined;
  /** How long an order query or cancellation waits for the projection at most; default 10 s. */
  readonly orderWaitMs?: number | undefined;
  /** Told about every projection batch: its events and each written order's lag, for metrics and benchmarks. */
  readonly onProjection?: ((report: ProjectionReport) => void) | undefined;
  /** Fault drills only: runs inside each projection batch's transaction, before its commit. */
  readonly beforeProjectionCommit?: ((orderDatabaseIndex: number) => Promise<void>) | undefined;
}

/**
 * The order databases' URLs: the configured ones; else, on the embedded server, databases of
 * their own (made by `ensureDatabase`); else the primary database, once per order database.
 */
export async function orderDatabaseUrlsFor(
  options: OrderOptions,
  primaryUrl: string,
  ensureDatabase: ((name: string) => Promise<string>) | undefined,
): Promise<string[]> {
  if (options.orderDatabaseUrls !== undefined && options.orderDatabaseUrls.length > 0) return [...options.orderDatabaseUrls];
  const indexes = Array.from({ length: orderDatabasesDefault }, (_, index) => index);
  if (ensureDatabase === undefined) return indexes.map(() => primaryUrl);
  const urls: string[] = [];
  for (const index of indexes) urls.push(await ensureDatabase(`seckill_orders_${index}`));
  return urls;
}
