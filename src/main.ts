/**
 * The entry point of `npm start`: reads the configuration, starts the engine (on an embedded
 * PostgreSQL in SECKILL_DATA_DIR when DATABASE_URL is unset), starts the server, and logs with
 * pino, one JSON object per line on stdout.
 *
 * Shutdown on SIGTERM or SIGINT is graceful: the listening socket closes at once, requests
 * already handed to the engine commit and are answered (new ones get `unavailable`), the
 * engine drains its journal and closes the database (and stops the embedded PostgreSQL), and
 * the connections are closed with 1001. A second signal exits at once. Every reply that was
 * sent promised a committed change, so an exit at any point loses nothing that was promised.
 */
import { pino } from 'pino';
import { loadConfig, type Config } from './config.js';
import { createEngine, type Engine } from './engine.js';
import { ConfigurationError, StartupError } from './errors.js';
import { Metrics } from './metrics.js';
import { startServer, type SeckillServer } from './server.js';
import { rehearseSale } from './server/rehearsal.js';
import { uwsImplementation } from './edge/uws.js';

/** Exit codes: 0 after a clean shutdown, 1 when the start failed, 2 for a bad configuration. */
const exitCodes = { clean: 0, startFailed: 1, badConfiguration: 2 } as const;
const signalNumbers: Record<'SIGTERM' | 'SIGINT', number> = { SIGTERM: 15, SIGINT: 2 };

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigurationError) {
      process.stderr.write(`seckill: ${error.message}\n`);
      process.exit(exitCodes.badConfiguration);
    }
    throw error;
  }
  // Written synchronously: pino's default stream writes each line from Node's thread pool, and
  // a line still on its way there when the process exits came out after the lines written at the
  // exit, or not at all (seen under load: `stopped cleanly` before `shutting down`). The server
  // logs at start, at stop and on failures, not per request that succeeds.
  const logger = pino({ level: config.logLevel, base: { pid: process.pid }, name: 'seckill' }, pino.destination({ dest: 1, sync: true }));

  // Generated secrets are printed once, here, so a developer can mint tokens for this run.
  if (config.jwtSecretGenerated) {
    logger.warn(
      { jwtSecret: config.jwtSecret },
      `SECKILL_JWT_SECRET is not set; this run signs user tokens with the generated secret ${config.jwtSecret}. ` +
        'Every user token dies when this process restarts: set SECKILL_JWT_SECRET (at least 32 bytes) to keep them valid',
    );
  }
  if (config.adminTokenGenerated) {
    logger.warn(
      { adminToken: config.adminToken },
      `SECKILL_ADMIN_TOKEN is not set; this run's admin token is ${config.adminToken}, and the next run's will differ`,
    );
  }

  const implementation = uwsImplementation();
  logger.info({ implementation }, `uWebSockets.js implementation: ${implementation}`);
  if (implementation !== 'native') {
    logger.warn('the native uWebSockets.js binary did not load; the slow ws fallback serves this run');
  }

  const metrics = new Metrics();
  let engine: Engine | undefined;
  let server: SeckillServer | undefined;
  let stopping = false;

  const shutdown = async (signal: 'SIGTERM' | 'SIGINT'): Promise<void> => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(128 + signalNumbers[signal]);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections; in-flight requests commit and are answered');
    try {
      server?.stopAccepting();
      if (server !== undefined) {
        const drained = await server.drain(config.shutdownGraceMs);
        if (!drained) logger.warn({ inFlight: server.inFlight }, 'requests still in flight after the grace period');
      }
      await engine?.close();
      // Each 1001 goes out behind the replies queued for its connection; a client slow to read
      // gets up to 2 s to take them. Only one that stopped reading misses its 1001.
      await server?.closeConnections();
      logger.info('stopped cleanly');
      process.exit(exitCodes.clean);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(exitCodes.startFailed);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    logger.info(
      config.databaseUrl === undefined
        ? { dataDirectory: config.dataDirectory }
        : { database: redactPassword(config.databaseUrl) },
      config.databaseUrl === undefined ? 'starting the engine on an embedded PostgreSQL' : 'starting the engine',
    );
    engine = await createEngine({
      databaseUrl: config.databaseUrl,
      extraInventoryDatabaseUrls: config.inventoryDatabaseUrls,
      dataDirectory: config.dataDirectory,
      databaseWaitMs: config.databaseWaitMs,
      flushEventsMax: config.flushEventsMax,
      shards: config.shards,
      defaultSlices: config.defaultSlices,
      nodeId: config.nodeId,
      orderDatabaseUrls: config.orderDatabaseUrls,
      orderTablesPerDatabase: config.orderTablesPerDatabase,
      orderHistoryAfterMs: config.orderHistoryAfterMs,
      orderHistoryBatchRows: config.orderHistoryBatchRows,
      onFlush: metrics.flush,
      onProjection: metrics.projection,
      log: (level, message, detail) => {
        if (detail === undefined) logger[level](message);
        else logger[level]({ detail: detail instanceof Error ? { message: detail.message, stack: detail.stack } : detail }, message);
      },
    });
    if (stopping) {
      await engine.close();
      process.exit(exitCodes.clean);
    }
    if (config.rehearsalBuyers > 0) {
      try {
        const rehearsal = await rehearseSale({
          databaseUrls: engine.databaseUrls,
          engine: { shards: config.shards, defaultSlices: config.defaultSlices, flushEventsMax: config.flushEventsMax },
          limits: config.limits,
          buyers: config.rehearsalBuyers,
        });
        logger.info(rehearsal, `rehearsed a sale: ${rehearsal.buyers} buyers, ${rehearsal.rounds} moments, in ${rehearsal.durationMs} ms`);
      } catch (error) {
        // A role that may not create databases, say: the server still serves, only colder.
        logger.warn({ err: error }, 'could not rehearse a sale; the first sale will run on code not yet compiled');
      }
      if (stopping) {
        await engine.close();
        process.exit(exitCodes.clean);
      }
    }
    server = await startServer({
      engine,
      jwtSecret: config.jwtSecret,
      adminToken: config.adminToken,
      host: config.host,
      port: config.port,
      limits: config.limits,
      logger,
      metrics,
    });
    logger.info(
      { host: server.host, port: server.port, items: engine.itemIds().length, implementation },
      `listening on ${server.httpUrl} (WebSocket ${server.wsUrl})`,
    );
  } catch (error) {
    // One line a person can act on, on stderr and in the log; the stack and PostgreSQL's own
    // last lines go to the log only, where whoever needs more can find them.
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.stderr.write(`seckill: could not start: ${reason}\n`);
    logger.fatal(
      {
        err: error instanceof StartupError ? undefined : error,
        postgresOutput: error instanceof StartupError ? error.detail : undefined,
      },
      `the server could not start: ${reason}`,
    );
    await engine?.close().catch(() => undefined);
    process.exit(exitCodes.startFailed);
  }
}

function redactPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

await main();
