/**
 * The one owner of `pg` pools. Every connection the engine opens comes from here, with the
 * engine's schema on its search path and a bounded size, so no code path can open a
 * connection that nobody closes.
 */
import pg from 'pg';

export const schemaName = 'seckill';

export interface PoolOptions {
  readonly connectionString: string;
  /** Connections this pool may hold at once. */
  readonly connectionsMax?: number;
  /** How long a caller may wait for a connection before the pool gives up. */
  readonly connectTimeoutMs?: number;
  /** The schema first on the search path; default the engine's own, `seckill`. */
  readonly schema?: string;
  /**
   * How long one statement may run on the server; the client waits `answerMarginMs` longer for
   * its answer, then gives up on the connection. 0: no bound, for tools that read everything.
   */
  readonly statementTimeoutMs?: number;
}

/**
 * Every wait towards PostgreSQL is bounded. A connection that is black-holed (a network
 * partition: packets dropped, nothing closed) answers nothing and closes nothing, and the
 * kernel would take about 15 minutes to give up on it; meanwhile a flush, and every slice
 * behind it, would wait. These bounds end such waits in seconds: the statement timeout on the
 * server, the query timeout on the client (a little longer, so that a slow server cancels its
 * statement and says so before the client stops listening), the connect timeout, and TCP
 * keepalive for idle connections. A flush of the largest batch takes well under a second, so
 * the statement timeout leaves it a wide margin.
 */
export const statementTimeoutMsDefault = 3_000;
export const connectTimeoutMsDefault = 3_000;
const answerMarginMs = 1_000;
/** A client that vanished inside a transaction releases its locks after this long. */
const idleInTransactionTimeoutMs = 10_000;
const keepAliveInitialDelayMs = 5_000;

export function createPool(options: PoolOptions): pg.Pool {
  const statementTimeoutMs = options.statementTimeoutMs ?? statementTimeoutMsDefault;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.connectionsMax ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? connectTimeoutMsDefault,
    options: `-c search_path=${options.schema ?? schemaName}`,
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveInitialDelayMs,
    idle_in_transaction_session_timeout: idleInTransactionTimeoutMs,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs, query_timeout: statementTimeoutMs + answerMarginMs } : {}),
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener that
  // would crash the process. The next query on the pool reports the failure where it matters.
  pool.on('error', () => undefined);
  // The same holds for a client that is checked out but between queries when its connection
  // drops; its current or next query fails, and that failure is handled by whoever runs it.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Runs `work` inside one transaction on one client: BEGIN, work, COMMIT; ROLLBACK on failure. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      // The connection itself failed; it must not go back into the pool.
      broken = true;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * A connection of its own, outside every pool, for a session that must last as long as the
 * process (the engine's lock). It is named, so that `pg_stat_activity` tells who holds what.
 * Its errors are the caller's to watch: the listener here only keeps them from crashing.
 */
export function createSessionClient(connectionString: string, applicationName: string): pg.Client {
  const client = new pg.Client({
    connectionString,
    application_name: applicationName,
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  client.on('error', () => undefined);
  return client;
}
