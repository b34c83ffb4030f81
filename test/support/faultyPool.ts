/**
 * A pool that is the real one, except that the journal's flush statements pass through a hook
 * the test controls: it can hold a flush, fail it with a PostgreSQL error, or lose its
 * connection before or after PostgreSQL ran it. Every other query passes through whole.
 */
import pg from 'pg';

/** Runs or replaces one flush; `statement` is the flush as sent, to send again later. */
export type FlushHook = (run: () => Promise<pg.QueryResult>, statement: pg.QueryConfig) => Promise<pg.QueryResult>;

/**
 * `hook` is asked at every flush; `down` makes every other query and every new connection fail
 * as an unreachable server would.
 */
export function withFlushHook(real: pg.Pool, hook: () => FlushHook | undefined, down: () => boolean = () => false): pg.Pool {
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'query') {
        return (...parameters: unknown[]) =>
          down() ? Promise.reject(connectionRefused()) : (target.query as (...all: unknown[]) => unknown)(...parameters);
      }
      if (property !== 'connect') return Reflect.get(target, property, receiver);
      return async (callback?: unknown) => {
        // pg's own `pool.query` connects with a callback: that path is left alone.
        if (typeof callback === 'function') return target.connect(callback as never);
        if (down()) throw connectionRefused();
        const client = await target.connect();
        const query = client.query.bind(client) as (...parameters: unknown[]) => Promise<pg.QueryResult>;
        (client as unknown as { query: unknown }).query = (...parameters: unknown[]) => {
          const config = parameters[0] as pg.QueryConfig | string;
          const isFlush = typeof config === 'object' && config.name === 'journal-flush';
          const intercept = isFlush ? hook() : undefined;
          if (intercept === undefined) return query(...parameters);
          return intercept(() => query(...parameters), config as pg.QueryConfig);
        };
        return client;
      };
    },
  });
}

/** An error PostgreSQL would answer for a statement it rolled back (a check constraint, say). */
export function rolledBack(message = 'refused on purpose'): pg.DatabaseError {
  const error = new pg.DatabaseError(message, 0, 'error');
  error.code = '23514';
  return error;
}

/** The error pg reports when the connection is gone and the outcome of the statement with it. */
export function connectionLost(): Error {
  return new Error('Connection terminated unexpectedly');
}

function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}

/** A promise with its settlers, to hold a flush until the test lets it go. */
export function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((settle, fail) => {
    resolve = settle;
    reject = fail;
  });
  return { promise, resolve, reject };
}
