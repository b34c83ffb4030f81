/**
 * Creating an engine: the databases (given, embedded or temporary: `persistence/storage.ts`),
 * their migrations, the slice runtime, and the start of every stored item before the engine serves.
 */
import { systemClock } from '../clock.js';
import { takeEngineLock, type EngineLock } from '../persistence/engineLock.js';
import { Catalog } from '../persistence/catalog.js';
import { migrate } from '../persistence/migrations.js';
import { createPool } from '../persistence/pools.js';
import { openStorage } from '../persistence/storage.js';
import { InProcessSlices, ShardedSlices, type SliceRuntime } from '../sliceRuntime.js';
import { TokenSigner } from '../tokens.js';
import { tablesPerDatabaseDefault } from '../orders/orderDatabases.js';
import { orderDatabaseUrlsFor } from '../orders/orderOptions.js';
import { OrderService } from '../orders/orderService.js';
import { Engine } from './engine.js';
import type { EngineOptions } from './types.js';

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  const storage = await openStorage(options, log);
  const { databaseUrls } = storage;
  let engineLock: EngineLock;
  try {
    engineLock = await takeEngineLock(databaseUrls, log);
  } catch (error) {
    await storage.stop();
    throw error;
  }
  const pools = databaseUrls.map((connectionString) => createPool({ connectionString, connectionsMax: 8 }));
  let runtime: SliceRuntime | undefined;
  let orderService: OrderService | undefined;
  try {
    for (const pool of pools) await migrate(pool);
    const orderDatabaseUrls = await orderDatabaseUrlsFor(options, databaseUrls[0]!, storage.ensureDatabase);
    orderService = await OrderService.open({
      inventoryPools: pools,
      orderDatabaseUrls,
      tablesPerDatabase: options.orderTablesPerDatabase ?? tablesPerDatabaseDefault,
      clock,
      nodeId: options.nodeId ?? 0,
      historyAfterMs: options.orderHistoryAfterMs,
      historyBatchRows: options.orderHistoryBatchRows,
      historyIntervalMs: options.orderHistoryIntervalMs,
      pendingOrdersMax: options.pendingOrdersMax,
      orderWaitMs: options.orderWaitMs,
      onProjection: options.onProjection,
      beforeProjectionCommit: options.beforeProjectionCommit,
      log,
    });
    const catalog = new Catalog(pools);
    const items = await catalog.loadItems();
    let engine: Engine | undefined;
    const runtimeOptions = {
      clock,
      flushEventsMax: options.flushEventsMax,
      snapshotEvery: options.snapshotEvery,
      mailboxDepthMax: options.mailboxDepthMax,
      backlogEventsMax: options.backlogEventsMax,
      onFigures: (sliceId: string) => engine?.sliceChanged(sliceId),
      onFlush: options.onFlush,
      log,
    };
    runtime =
      (options.shards ?? 0) > 0
        ? new ShardedSlices(options.shards!, databaseUrls, {
            ...runtimeOptions,
            onShardRecovered: () =>
              void engine?.shardRecovered().catch((error: unknown) => log('error', 'settling transfers failed', error)),
          })
        : new InProcessSlices(pools, runtimeOptions);
    engine = new Engine(
      catalog,
      pools,
      runtime,
      new TokenSigner(await catalog.tokenSecret()),
      clock,
      storage,
      options.nodeId ?? 0,
      log,
      options.defaultSlices ?? 1,
      engineLock,
      orderService,
    );
    engine.loadBlocklist(await catalog.blocklist());
    await Promise.all(items.map((item) => engine!.startItem(item.definition, item.slices)));
    orderService.start();
    return engine;
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    await orderService?.close().catch(() => undefined);
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await engineLock.release();
    await storage.stop();
    throw error;
  }
}
