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
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.connectionsMax ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    options: `-c search_path=${options.schema ?? schemaName}`,
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
