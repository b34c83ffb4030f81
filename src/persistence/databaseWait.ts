/**
 * Waiting for PostgreSQL at start. A server started beside its database (one `docker compose
 * up`, one boot) often comes up first; failing at once with "Connection terminated
 * unexpectedly" would make the process manager's restarts do the waiting, noisily. So the
 * engine tries again with growing pauses, for a bounded time, and says each time what it waits
 * for. What waiting cannot fix (a wrong password, a database that does not exist) fails at once.
 */
import { StartupError } from '../errors.js';
import { createSessionClient } from './pools.js';

export interface DatabaseWaitOptions {
  /** How long to keep trying; 0 tries once. */
  readonly waitMs: number;
  readonly log: (level: 'warn', message: string) => void;
  /** How the pauses pass; a test may pass its own. */
  readonly sleep?: (milliseconds: number) => Promise<void>;
  readonly now?: () => number;
}

export const firstRetryDelayMs = 250;
export const retryDelayMsMax = 5_000;

/** The pause before try `attempt + 1`: doubling from 250 ms, at most 5 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(retryDelayMsMax, firstRetryDelayMs * 2 ** Math.min(attempt, 16));
}

export interface ConnectionProblem {
  /** Whether PostgreSQL may yet answer: down, starting, unreachable for now. */
  readonly transient: boolean;
  /** What went wrong, in words, with the error code. */
  readonly reason: string;
  /** What to do about it, for a problem that waiting does not solve. */
  readonly fix: string;
}

/** Sorts a failed connection attempt into "wait and try again" and "tell the operator now". */
export function describeConnectionProblem(error: unknown): ConnectionProblem {
  const { code, message } = errorCode(error);
  const transient = (reason: string): ConnectionProblem => ({
    transient: true,
    reason,
    fix: 'start PostgreSQL, or correct the host and port in DATABASE_URL; SECKILL_DATABASE_WAIT_MS sets how long to wait',
  });
  switch (code) {
    case 'ECONNREFUSED':
      return transient('connection refused (ECONNREFUSED)');
    case 'ECONNRESET':
      return transient('connection reset (ECONNRESET)');
    case 'ETIMEDOUT':
      return transient('connection timed out (ETIMEDOUT)');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return transient(`no route to the host (${code})`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      // A container's database host resolves only once that container has started.
      return transient(`the host name does not resolve (${code})`);
    case '57P03':
      return transient(`PostgreSQL is starting up or shutting down (57P03)`);
    case '53300':
      return transient('PostgreSQL has no connection slot free (53300)');
    case '28P01':
    case '28000':
      return { transient: false, reason: `${message} (${code})`, fix: 'correct the user and password in DATABASE_URL' };
    case '3D000':
      return {
        transient: false,
        reason: `${message} (${code})`,
        fix: 'create the database (createdb NAME), or correct its name in DATABASE_URL',
      };
    default:
      break;
  }
  if (/Connection terminated|timeout/i.test(message)) return transient(message);
  return { transient: false, reason: code === undefined ? message : `${message} (${code})`, fix: 'check DATABASE_URL' };
}

/** host:port/database of a URL, without its user and password. */
export function describeDatabase(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port === '' ? '5432' : parsed.port}${parsed.pathname}`;
}

/**
 * Returns once PostgreSQL at `url` accepts a connection and answers a query; throws a
 * `StartupError` naming the database, the reason and the fix when it will not, or did not
 * within `waitMs`.
 */
export async function waitForDatabase(url: string, options: DatabaseWaitOptions): Promise<void> {
  const sleep = options.sleep ?? ((milliseconds) => new Promise((resolve) => setTimeout(resolve, milliseconds)));
  const now = options.now ?? Date.now;
  const deadline = now() + options.waitMs;
  const where = `PostgreSQL at ${describeDatabase(url)}`;
  for (let attempt = 0; ; attempt++) {
    const problem = await tryConnecting(url);
    if (problem === undefined) return;
    if (!problem.transient) throw new StartupError(`${where} refused the engine: ${problem.reason}; fix: ${problem.fix}`);
    const delayMs = retryDelayMs(attempt);
    const leftMs = deadline - now();
    if (leftMs < delayMs) {
      const waited = options.waitMs === 0 ? '' : ` within ${Math.round(options.waitMs / 1_000)} s`;
      throw new StartupError(`${where} did not answer${waited}: ${problem.reason}; fix: ${problem.fix}`);
    }
    options.log(
      'warn',
      `waiting for ${where}: ${problem.reason}; trying again in ${formatSeconds(delayMs)}, ` +
        `giving up in ${formatSeconds(leftMs)}`,
    );
    await sleep(delayMs);
  }
}

async function tryConnecting(url: string): Promise<ConnectionProblem | undefined> {
  const client = createSessionClient(url, 'seckill start-up check');
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return describeConnectionProblem(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function errorCode(error: unknown): { code: string | undefined; message: string } {
  const candidate = error as { code?: unknown; message?: unknown; errors?: unknown[] } | undefined;
  // Node reports a refused connection to a name with several addresses as an AggregateError.
  const inner = Array.isArray(candidate?.errors) ? (candidate.errors[0] as { code?: unknown } | undefined) : undefined;
  const code = typeof candidate?.code === 'string' ? candidate.code : typeof inner?.code === 'string' ? inner.code : undefined;
  const message = typeof candidate?.message === 'string' && candidate.message !== '' ? candidate.message.split('\n')[0]! : String(error);
  return { code, message };
}

function formatSeconds(milliseconds: number): string {
  return milliseconds < 1_000 ? `${milliseconds} ms` : `${Math.round(milliseconds / 1_000)} s`;
}
