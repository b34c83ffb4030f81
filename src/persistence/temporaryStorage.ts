/**
 * Throw-away storage for an engine that lives as long as one test file: a fresh data directory
 * for the embedded PostgreSQL, or fresh databases on a server the caller names. Parallel test
 * files each get their own, so they never meet on `./.seckill` or on each other's rows, and
 * `remove()` (called by the engine's `close()`) deletes it all again.
 *
 * A process killed before `close()` leaves its directory (under the system's temporary folder,
 * named `seckill-engine-…`) or its databases (`seckill_temporary_…`) behind; nothing else does.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSessionClient } from './pools.js';

export interface TemporaryStorage<T> {
  readonly value: T;
  remove(): Promise<void>;
}

/** A new, empty directory under the system's temporary folder. */
export async function temporaryDataDirectory(): Promise<TemporaryStorage<string>> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-engine-'));
  return { value: directory, remove: () => rm(directory, { recursive: true, force: true }) };
}

const applicationName = 'seckill temporary databases';

/**
 * For each server URL, a new database on that server, named `<prefix>_<random>`;
 * returns the new databases' URLs in the same order. The URL's own database is only used to
 * issue CREATE and DROP DATABASE, so its user needs the CREATEDB privilege.
 */
export async function temporaryDatabases(serverUrls: readonly string[], prefix = 'seckill_temporary'): Promise<TemporaryStorage<string[]>> {
  const created: { serverUrl: string; name: string }[] = [];
  const remove = async (): Promise<void> => {
    for (const { serverUrl, name } of created.splice(0)) {
      // FORCE ends any connection still open, such as one a test forgot to close.
      await onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`));
    }
  };
  try {
    const urls: string[] = [];
    for (const serverUrl of serverUrls) {
      const name = `${prefix}_${randomBytes(6).toString('hex')}`;
      await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
      created.push({ serverUrl, name });
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      urls.push(url.toString());
    }
    return { value: urls, remove };
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}

/**
 * Drops the databases named `<prefix>_…` on each server that nobody is connected to: those a
 * process killed before its `remove()` left behind. One still in use stays (PostgreSQL refuses
 * to drop it), and so does any a server will not let this user drop.
 */
export async function dropAbandonedDatabases(serverUrls: readonly string[], prefix: string): Promise<string[]> {
  const dropped: string[] = [];
  for (const serverUrl of serverUrls) {
    await onServer(serverUrl, async (client) => {
      const names = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`${prefix}_`]);
      for (const { datname } of names.rows) {
        try {
          await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)}`);
          dropped.push(datname);
        } catch {
          // In use (a rehearsal running now) or not ours to drop: left alone.
        }
      }
    });
  }
  return dropped;
}

async function onServer<T>(serverUrl: string, work: (client: ReturnType<typeof createSessionClient>) => Promise<T>): Promise<T> {
  const client = createSessionClient(serverUrl, applicationName);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
