/**
 * The server's configuration, read from the environment once at start. This module is the
 * only reader of `process.env`. Every variable is validated before anything starts, and a bad
 * value stops the start with a message that names the variable, so a deployer never finds out
 * about a typo in the middle of a sale.
 *
 * The variables of the wire contract (shared/PROTOCOL.md) keep their names and defaults:
 * PORT, HOST, DATABASE_URL, SECKILL_DATA_DIR, SECKILL_JWT_SECRET and SECKILL_ADMIN_TOKEN. The
 * others are the server's limits, each named with its unit last. An empty variable counts as
 * unset, as most deployment tools write "unset" that way.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { ConfigurationError } from './errors.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The edge's limits: rates, sizes and counts the server enforces. */
export interface EdgeLimits {
  /** Largest request frame that is read; a larger one is answered `invalid` and not parsed. */
  readonly wsPayloadBytesMax: number;
  /**
   * Largest frame uWebSockets.js accepts at all; a larger one closes the connection at once,
   * without a close frame (the client sees 1006), so no frame is ever buffered without bound.
   */
  readonly wsFrameBytesMax: number;
  /** Bytes waiting to be sent to one connection; past it the connection is closed (4408). */
  readonly wsBufferedBytesMax: number;
  /** Bytes waiting to be sent past which a connection gets no stock pushes until it catches up. */
  readonly stockPushBufferedBytesMax: number;
  /** Seconds without traffic after which a connection is closed; uWebSockets.js pings before. */
  readonly wsIdleTimeoutSeconds: number;
  /** Open WebSocket connections at most; further upgrades get 503. */
  readonly connectionsMax: number;
  /** Items one connection may be subscribed to at most. */
  readonly subscriptionsPerConnectionMax: number;
  readonly userRequestsPerSecond: number;
  readonly userBurstRequests: number;
  readonly connectionRequestsPerSecond: number;
  readonly connectionBurstRequests: number;
  /** Users whose request rate is tracked at once; the idle ones are forgotten first. */
  readonly rateLimitedUsersMax: number;
  /** How long an arithmetic challenge may be answered. */
  readonly challengeTtlMs: number;
  /** Challenges waiting for an answer at most; the oldest is dropped past it. */
  readonly challengesMax: number;
  /** Largest HTTP request body (the admin routes' JSON). */
  readonly httpBodyBytesMax: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset: the engine starts an embedded PostgreSQL in `dataDirectory`. */
  readonly databaseUrl: string | undefined;
  readonly dataDirectory: string;
  /** The HS256 secret of user tokens, as the UTF-8 bytes of SECKILL_JWT_SECRET. */
  readonly jwtSecret: string;
  /** True when SECKILL_JWT_SECRET was unset and `jwtSecret` was generated for this run. */
  readonly jwtSecretGenerated: boolean;
  readonly adminToken: string;
  readonly adminTokenGenerated: boolean;
  readonly logLevel: LogLevel;
  /** How long a graceful shutdown waits for in-flight requests to commit and be answered. */
  readonly shutdownGraceMs: number;
  /** How long the start waits for DATABASE_URL's PostgreSQL to answer, trying again and again. */
  readonly databaseWaitMs: number;
  /** Events written by one journal transaction at most; unset: the engine's default. */
  readonly flushEventsMax: number | undefined;
  /** Further inventory databases (SECKILL_INVENTORY_DATABASE_URLS, comma-separated); needs DATABASE_URL. */
  readonly inventoryDatabaseUrls: readonly string[];
  /** Worker threads hosting the slices; 0 runs them in the server's thread. Unset: `defaultShards` of this machine. */
  readonly shards: number;
  /** Slices of an item created without `slices`; unset: the engine's choice. */
  readonly defaultSlices: number | undefined;
  /** The engine's process number, kept in order ids (0..99). */
  readonly nodeId: number;
  /** Order database URLs (SECKILL_ORDER_DATABASE_URLS, comma-separated); empty: the engine's default two. */
  readonly orderDatabaseUrls: readonly string[];
  /** Tables per order database in each dimension. */
  readonly orderTablesPerDatabase: number;
  /** Orders older than this move to the history tables. */
  readonly orderHistoryAfterMs: number;
  /** Orders the history job moves per transaction. */
  readonly orderHistoryBatchRows: number;
  readonly limits: EdgeLimits;
  /** Buyers in the rehearsal of a sale before the server listens (src/server/rehearsal.ts); 0 skips it. */
  readonly rehearsalBuyers: number;
}

export const defaultLimits: EdgeLimits = {
  wsPayloadBytesMax: 8 * 1024,
  wsFrameBytesMax: 32 * 1024,
  wsBufferedBytesMax: 1024 * 1024,
  stockPushBufferedBytesMax: 64 * 1024,
  wsIdleTimeoutSeconds: 120,
  connectionsMax: 100_000,
  subscriptionsPerConnectionMax: 64,
  userRequestsPerSecond: 20,
  userBurstRequests: 40,
  connectionRequestsPerSecond: 20,
  connectionBurstRequests: 40,
  rateLimitedUsersMax: 200_000,
  challengeTtlMs: 30_000,
  challengesMax: 100_000,
  httpBodyBytesMax: 64 * 1024,
};

type Environment = Readonly<Record<string, string | undefined>>;

/** The shortest SECKILL_JWT_SECRET accepted: the 32 bytes of HS256's hash. */
export const jwtSecretBytesMin = 32;

/**
 * Shard workers when SECKILL_SHARDS is unset. Measured with `npm run bench:ws` on 2 cores: the
 * slices in the front end's own thread served 37,000 orders/s, one shard worker 28,000, since
 * the front end, PostgreSQL and the worker then share two cores. With more cores, the workers
 * get what the front end and PostgreSQL leave: cores − 2 (not measured here: these machines
 * have 2).
 */
export function defaultShards(cores: number): number {
  return cores <= 2 ? 0 : cores - 2;
}

/**
 * Buyers in the start-up rehearsal (src/server/rehearsal.ts). Measured on 2 cores: 4,000 cost
 * about 2.3 s of start-up and took a new server's first moment in `npm run bench:moment` from
 * 480 to 350 ms of CPU (medians); 1,000 gained next to nothing in a bench made for the purpose.
 */
export const rehearsalBuyersDefault = 4_000;

const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads a configuration from `environment`; throws `ConfigurationError` naming every bad variable. */
export function parseConfig(
  environment: Environment,
  generateSecret: () => string = () => randomBytes(32).toString('base64url'),
): Config {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = environment[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, minimum: number, maximum: number): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
      problems.push(`${name} must be an integer from ${minimum} to ${maximum}, got ${JSON.stringify(text)}`);
      return fallback;
    }
    return value;
  };

  const port = integer('PORT', 8080, 0, 65_535);
  const host = read('HOST') ?? '127.0.0.1';

  const isPostgresUrl = (url: string): boolean => {
    try {
      const protocol = new URL(url).protocol;
      return protocol === 'postgres:' || protocol === 'postgresql:';
    } catch {
      return false;
    }
  };
  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined && !isPostgresUrl(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const inventoryDatabaseUrls = (read('SECKILL_INVENTORY_DATABASE_URLS') ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  if (inventoryDatabaseUrls.some((url) => !isPostgresUrl(url))) {
    problems.push('SECKILL_INVENTORY_DATABASE_URLS must be a comma-separated list of postgres:// URLs');
  }
  if (inventoryDatabaseUrls.length > 0 && databaseUrl === undefined) {
    problems.push('SECKILL_INVENTORY_DATABASE_URLS needs DATABASE_URL, the primary database');
  }

  const jwtSecretText = read('SECKILL_JWT_SECRET');
  // HS256 signs with HMAC-SHA-256; a key shorter than the hash's 32 bytes weakens every token
  // (RFC 7518, section 3.2), and a short secret is usually a placeholder left in by mistake.
  const jwtSecretBytes = jwtSecretText === undefined ? 0 : Buffer.byteLength(jwtSecretText, 'utf8');
  if (jwtSecretText !== undefined && jwtSecretBytes < jwtSecretBytesMin) {
    problems.push(
      `SECKILL_JWT_SECRET must be at least ${jwtSecretBytesMin} bytes for HS256, got ${jwtSecretBytes}; ` +
        'generate one with `openssl rand -base64 32`',
    );
  }
  const adminTokenText = read('SECKILL_ADMIN_TOKEN');
  if (adminTokenText !== undefined && /\s/.test(adminTokenText)) {
    problems.push('SECKILL_ADMIN_TOKEN must not contain white space, as it travels in an Authorization header');
  }

  const logLevelText = read('SECKILL_LOG_LEVEL') ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevelText)) {
    problems.push(`SECKILL_LOG_LEVEL must be one of ${logLevels.join(', ')}, got ${JSON.stringify(logLevelText)}`);
  }

  const limits: EdgeLimits = {
    wsPayloadBytesMax: integer('SECKILL_WS_PAYLOAD_BYTES_MAX', defaultLimits.wsPayloadBytesMax, 512, 16 * 1024 * 1024),
    wsFrameBytesMax: integer('SECKILL_WS_FRAME_BYTES_MAX', defaultLimits.wsFrameBytesMax, 512, 64 * 1024 * 1024),
    wsBufferedBytesMax: integer('SECKILL_WS_BUFFERED_BYTES_MAX', defaultLimits.wsBufferedBytesMax, 4096, 1024 ** 3),
    stockPushBufferedBytesMax: integer(
      'SECKILL_STOCK_PUSH_BUFFERED_BYTES_MAX',
      defaultLimits.stockPushBufferedBytesMax,
      1024,
      1024 ** 3,
    ),
    wsIdleTimeoutSeconds: integer('SECKILL_WS_IDLE_TIMEOUT_SECONDS', defaultLimits.wsIdleTimeoutSeconds, 8, 3_600),
    connectionsMax: integer('SECKILL_CONNECTIONS_MAX', defaultLimits.connectionsMax, 1, 10_000_000),
    subscriptionsPerConnectionMax: integer(
      'SECKILL_SUBSCRIPTIONS_PER_CONNECTION_MAX',
      defaultLimits.subscriptionsPerConnectionMax,
      1,
      10_000,
    ),
    userRequestsPerSecond: integer('SECKILL_USER_REQUESTS_PER_SECOND', defaultLimits.userRequestsPerSecond, 1, 1_000_000),
    userBurstRequests: integer('SECKILL_USER_BURST_REQUESTS', defaultLimits.userBurstRequests, 1, 1_000_000),
    connectionRequestsPerSecond: integer(
      'SECKILL_CONNECTION_REQUESTS_PER_SECOND',
      defaultLimits.connectionRequestsPerSecond,
      1,
      1_000_000,
    ),
    connectionBurstRequests: integer(
      'SECKILL_CONNECTION_BURST_REQUESTS',
      defaultLimits.connectionBurstRequests,
      1,
      1_000_000,
    ),
    rateLimitedUsersMax: integer('SECKILL_RATE_LIMITED_USERS_MAX', defaultLimits.rateLimitedUsersMax, 1, 100_000_000),
    challengeTtlMs: integer('SECKILL_CHALLENGE_TTL_MS', defaultLimits.challengeTtlMs, 1_000, 3_600_000),
    challengesMax: integer('SECKILL_CHALLENGES_MAX', defaultLimits.challengesMax, 1, 100_000_000),
    httpBodyBytesMax: integer('SECKILL_HTTP_BODY_BYTES_MAX', defaultLimits.httpBodyBytesMax, 1024, 64 * 1024 * 1024),
  };
  if (limits.wsPayloadBytesMax > limits.wsFrameBytesMax) {
    problems.push('SECKILL_WS_PAYLOAD_BYTES_MAX must not be above SECKILL_WS_FRAME_BYTES_MAX');
  }
  if (limits.stockPushBufferedBytesMax > limits.wsBufferedBytesMax) {
    problems.push('SECKILL_STOCK_PUSH_BUFFERED_BYTES_MAX must not be above SECKILL_WS_BUFFERED_BYTES_MAX');
  }

  const shutdownGraceMs = integer('SECKILL_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000);
  const databaseWaitMs = integer('SECKILL_DATABASE_WAIT_MS', 60_000, 0, 3_600_000);
  const flushEventsText = read('SECKILL_FLUSH_EVENTS_MAX');
  const flushEventsMax = flushEventsText === undefined ? undefined : integer('SECKILL_FLUSH_EVENTS_MAX', 0, 1, 100_000);
  const nodeId = integer('SECKILL_NODE_ID', 0, 0, 99);
  const orderDatabaseUrls = (read('SECKILL_ORDER_DATABASE_URLS') ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  if (orderDatabaseUrls.some((url) => !isPostgresUrl(url))) {
    problems.push('SECKILL_ORDER_DATABASE_URLS must be a comma-separated list of postgres:// URLs');
  }
  if (orderDatabaseUrls.length > 100) problems.push('SECKILL_ORDER_DATABASE_URLS may name 100 order databases at most');
  const orderTablesPerDatabase = integer('SECKILL_ORDER_TABLES_PER_DATABASE', 8, 1, 100);
  const orderHistoryAfterDays = integer('SECKILL_ORDER_HISTORY_AFTER_DAYS', 90, 1, 36_500);
  const orderHistoryBatchRows = integer('SECKILL_ORDER_HISTORY_BATCH_ROWS', 1_000, 1, 100_000);
  const shards = integer('SECKILL_SHARDS', defaultShards(availableParallelism()), 0, 64);
  const rehearsalBuyers = integer('SECKILL_REHEARSAL_BUYERS', rehearsalBuyersDefault, 0, 100_000);
  const defaultSlices =
    read('SECKILL_DEFAULT_SLICES') === undefined ? undefined : integer('SECKILL_DEFAULT_SLICES', 1, 1, 64);

  if (problems.length > 0) {
    throw new ConfigurationError(`invalid configuration: ${problems.join('; ')}`);
  }
  return {
    port,
    host,
    databaseUrl,
    dataDirectory: read('SECKILL_DATA_DIR') ?? './.seckill',
    jwtSecret: jwtSecretText ?? generateSecret(),
    jwtSecretGenerated: jwtSecretText === undefined,
    adminToken: adminTokenText ?? generateSecret(),
    adminTokenGenerated: adminTokenText === undefined,
    logLevel: logLevelText as LogLevel,
    shutdownGraceMs,
    databaseWaitMs,
    flushEventsMax,
    inventoryDatabaseUrls,
    shards,
    defaultSlices,
    nodeId,
    orderDatabaseUrls,
    orderTablesPerDatabase,
    orderHistoryAfterMs: orderHistoryAfterDays * 24 * 3_600_000,
    orderHistoryBatchRows,
    limits,
    rehearsalBuyers,
  };
}

/** The configuration of this process, from `process.env`. */
export function loadConfig(): Config {
  return parseConfig(process.env);
}
