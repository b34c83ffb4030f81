/**
 * Where an engine keeps its data: the caller's PostgreSQL (waited for while it starts), an
 * embedded PostgreSQL started here, or throw-away storage for tests. `stop()` undoes what was
 * opened here, and is called once the engine has let go of the databases.
 */
import path from 'node:path';
import pg from 'pg';
import { ConfigurationError } from '../errors.js';
import { describeDatabase, waitForDatabase } from './databaseWait.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embeddedPostgres.js';
import { temporaryDatabases, temporaryDataDirectory } from './temporaryStorage.js';

export interface StorageOptions {
  readonly databaseUrl?: string | undefined;
  readonly extraInventoryDatabaseUrls?: readonly string[] | undefined;
  readonly dataDirectory?: string | undefined;
  readonly temporary?: boolean | undefined;
  readonly databaseWaitMs?: number | undefined;
}

type Log = (level: 'debug' | 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;

export interface OpenStorage {
  /** The primary database first, then the further inventory databases. */
  readonly databaseUrls: string[];
  /** Stops the embedded server and removes temporary storage; safe to call once the engine let go. */
  stop(): Promise<void>;
  /**
   * On the embedded server, makes sure a database of that name exists and returns its URL (the
   * order databases live beside the inventory ones); absent for the caller's servers.
   */
  readonly ensureDatabase?: (name: string) => Promise<string>;
}

/**
 * The databases the engine works in: the caller's, or an embedded server's (started here), or
 * throw-away ones (`temporary`). External servers are waited for, within `databaseWaitMs`.
 */
export async function openStorage(options: StorageOptions, log: Log): Promise<OpenStorage> {
  if (options.temporary === true && options.dataDirectory !== undefined) {
    throw new ConfigurationError('createEngine: `temporary` and `dataDirectory` exclude each other; pass one of them');
  }
  if (options.databaseUrl !== undefined) {
    const serverUrls = [options.databaseUrl, ...(options.extraInventoryDatabaseUrls ?? [])];
    for (const url of serverUrls) await waitForDatabase(url, { waitMs: options.databaseWaitMs ?? 0, log });
    if (options.temporary !== true) return { databaseUrls: serverUrls, stop: async () => undefined };
    const databases = await temporaryDatabases(serverUrls);
    log('info', `temporary databases ${databases.value.map(describeDatabase).join(', ')}, removed at close`);
    return { databaseUrls: databases.value, stop: databases.remove };
  }

  const temporaryDirectory = options.temporary === true ? await temporaryDataDirectory() : undefined;
  const dataDirectory = temporaryDirectory?.value ?? path.resolve(options.dataDirectory ?? '.seckill');
  let embedded: EmbeddedPostgresHandle;
  try {
    embedded = await startEmbeddedPostgres({
      dataDirectory,
      // PostgreSQL's own chatter: there when asked for, not in every start's log.
      log: (line) => log('debug', line.trimEnd()),
    });
  } catch (error) {
    await temporaryDirectory?.remove();
    throw error;
  }
  const stop = async (): Promise<void> => {
    await embedded.stop();
    await temporaryDirectory?.remove();
  };
  try {
    // Like the seed service's `inventory` and `inventory2`: two inventory databases.
    const databaseUrls = [
      await ensureDatabase(embedded.connectionString, 'seckill'),
      await ensureDatabase(embedded.connectionString, 'seckill_inventory2'),
    ];
    log(
      'info',
      `embedded PostgreSQL on 127.0.0.1:${embedded.port} with its data in ${dataDirectory}` +
        `${temporaryDirectory === undefined ? '' : ' (temporary, removed at close)'}; ` +
        `to look inside while it runs: psql ${databaseUrls[0]}`,
    );
    return { databaseUrls, stop, ensureDatabase: (name) => ensureDatabase(embedded.connectionString, name) };
  } catch (error) {
    await stop();
    throw error;
  }
}

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
