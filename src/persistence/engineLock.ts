/**
 * One engine per database. Two engines on the same database would each decide the same slices
 * from their own memory and both commit, so until the multi-node design (leases with fencing
 * epochs, DESIGN.md) exists, an engine takes a session-level advisory lock on every database it
 * writes to at start and holds it for its lifetime. A second engine finds the lock taken and
 * refuses to start, naming the holder from `pg_stat_activity`.
 *
 * A session lock ends with its connection. If the connection drops (PostgreSQL restarted, the
 * network cut), the lock is taken again as soon as the database answers; should another engine
 * have taken it in between, that is logged as an error on every attempt.
 */
import os from 'node:os';
import type pg from 'pg';
import { StartupError } from '../errors.js';
import { createSessionClient } from './pools.js';

export interface EngineLock {
  /** Releases every lock and closes their connections. */
  release(): Promise<void>;
}

type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

/** The advisory lock's two keys: a class for seckill ("5EC" in hex) and the engine lock in it. */
const lockClass = 0x5ec;
const lockObject = 1;
const relockDelayMs = 1_000;

/** Takes the lock on every database, or releases what it took and throws naming the holder. */
export async function takeEngineLock(databaseUrls: readonly string[], log: Log): Promise<EngineLock> {
  const held: DatabaseLock[] = [];
  try {
    for (const url of databaseUrls) {
      const lock = new DatabaseLock(url, log);
      await lock.take();
      held.push(lock);
    }
  } catch (error) {
    await Promise.all(held.map((lock) => lock.release()));
    throw error;
  }
  return { release: async () => void (await Promise.all(held.map((lock) => lock.release()))) };
}

const applicationName = `seckill engine pid ${process.pid} on ${os.hostname()}`;

class DatabaseLock {
  private client: pg.Client | undefined;
  private released = false;
  private relockTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly log: Log,
  ) {}

  async take(): Promise<void> {
    const client = createSessionClient(this.url, applicationName);
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', [
        lockClass,
        lockObject,
      ]);
      if (rows[0]?.locked !== true) {
        const holder = await describeHolder(client);
        throw new StartupError(
          `another seckill engine already serves database ${databaseName(this.url)} (${holder}); ` +
            `fix: stop that engine first, or give this one its own DATABASE_URL or SECKILL_DATA_DIR`,
        );
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    client.once('error', () => this.connectionLost());
    client.once('end', () => this.connectionLost());
  }

  async release(): Promise<void> {
    this.released = true;
    clearTimeout(this.relockTimer);
    const client = this.client;
    this.client = undefined;
    // Closing the session releases its advisory locks.
    await client?.end().catch(() => undefined);
  }

  private connectionLost(): void {
    if (this.released || this.client === undefined) return;
    this.client = undefined;
    this.log('warn', `the engine lock's connection to database ${databaseName(this.url)} dropped; taking the lock again`);
    this.scheduleRelock();
  }

  private scheduleRelock(): void {
    this.relockTimer = setTimeout(() => {
      if (this.released) return;
      this.take().then(
        () => this.log('info', `the engine lock on database ${databaseName(this.url)} is held again`),
        (error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          this.log(error instanceof StartupError ? 'error' : 'warn', `the engine lock is not held: ${message}`);
          this.scheduleRelock();
        },
      );
    }, relockDelayMs);
    this.relockTimer.unref();
  }
}

async function describeHolder(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ pid: number; application_name: string; client_addr: string | null; backend_start: Date }>(
    `select activity.pid, activity.application_name, host(activity.client_addr) as client_addr, activity.backend_start
       from pg_locks as locks join pg_stat_activity as activity on activity.pid = locks.pid
      where locks.locktype = 'advisory' and locks.granted and locks.classid = $1 and locks.objid = $2
        and locks.objsubid = 2 and locks.database = (select oid from pg_database where datname = current_database())`,
    [lockClass, lockObject],
  );
  const holder = rows[0];
  if (holder === undefined) return 'its holder has just let go; try again';
  const name = holder.application_name === '' ? 'an unnamed session' : `"${holder.application_name}"`;
  return `held by ${name}, backend pid ${holder.pid}, from ${holder.client_addr ?? 'a local socket'}, since ${holder.backend_start.toISOString()}`;
}

function databaseName(url: string): string {
  const parsed = new URL(url);
  return `${decodeURIComponent(parsed.pathname.slice(1)) || 'postgres'} on ${parsed.host}`;
}
