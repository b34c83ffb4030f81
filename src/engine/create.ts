/**
 * Creating an engine: the databases (embedded or given), their migrations, the slice runtime,
 * and the start of every stored item before the engine serves.
 */
import path from 'node:path';
import pg from 'pg';
import type { SliceFigures } from '../actors/sliceActor.js';
import { systemClock } from '../clock.js';
import type { SliceEvent } from '../domain/slice.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../persistence/embeddedPostgres.js';
import { takeEngineLock, type EngineLock } from '../persistence/engineLock.js';
import { Catalog } from '../persistence/catalog.js';
import { migrate } from '../persistence/migrations.js';
import { createPool } from '../persistence/pools.js';
import { InProcessSlices, ShardedSlices, type SliceRuntime } from '../sliceRuntime.js';
import { TokenSigner } from '../tokens.js';
import { Engine } from './engine.js';
import type { EngineOptions } from './types.js';

/** Makes sure the database named in an embedded server's URL exists, and returns its URL. */
async function ensureDatabase(serverUrl: string, database: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrls: string[];
  if (options.databaseUrl === undefined) {
    embedded = await startEmbeddedPostgres({
      dataDirectory: path.resolve(options.dataDirectory ?? '.seckill'),
      // PostgreSQL's own chatter: there when asked for, not in every start's log.
      log: (line) => log('debug', line.trimEnd()),
    });
    // Like the seed service's `inventory` and `inventory2`: two inventory databases.
    databaseUrls = [
      await ensureDatabase(embedded.connectionString, 'seckill'),
      await ensureDatabase(embedded.connectionString, 'seckill_inventory2'),
    ];
  } else {
    databaseUrls = [options.databaseUrl, ...(options.extraInventoryDatabaseUrls ?? [])];
  }
  let engineLock: EngineLock;
  try {
    engineLock = await takeEngineLock(databaseUrls, log);
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  const pools = databaseUrls.map((connectionString) => createPool({ connectionString, connectionsMax: 8 }));
  let runtime: SliceRuntime | undefined;
  try {
    for (const pool of pools) await migrate(pool);
    const catalog = new Catalog(pools);
    const items = await catalog.loadItems();
    let engine: Engine | undefined;
    const runtimeOptions = {
      clock,
      flushEventsMax: options.flushEventsMax,
      snapshotEvery: options.snapshotEvery,
      mailboxDepthMax: options.mailboxDepthMax,
      onFigures: (sliceId: string, figures: SliceFigures, events: readonly SliceEvent[]) =>
        engine?.sliceChanged(sliceId, figures, events),
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
      embedded,
      options.nodeId ?? 0,
      log,
      options.defaultSlices ?? 1,
      engineLock,
    );
    engine.loadBlocklist(await catalog.blocklist());
    await Promise.all(items.map((item) => engine!.startItem(item.definition, item.slices)));
    return engine;
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await engineLock.release();
    await embedded?.stop();
    throw error;
  }
}
