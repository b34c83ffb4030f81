/**
 * The side of a contender's own child process: it reads the run's settings from its argument,
 * runs, and sends one report to the orchestrator over the IPC channel. A contender that needs
 * PostgreSQL gets a server of its own (a fresh embedded one in a temporary directory, or a
 * fresh database on the server in DATABASE_URL), so nothing one contender left behind (warm
 * buffers, WAL to checkpoint, dead rows to vacuum) is paid or enjoyed by the next.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/persistence/embeddedPostgres.js';
import { freshDatabase } from '../support/measure.js';
import { parentOf } from './cpu.js';
import type { ContenderReport } from './result.js';
import type { BenchSettings } from './settings.js';

/** Runs a contender's main function as this process's whole life. */
export function contenderMain(run: (settings: BenchSettings) => Promise<ContenderReport>): void {
  const settings = JSON.parse(process.argv[2] ?? '{}') as BenchSettings;
  run(settings).then(
    (report) => finish({ kind: 'report', report }),
    (error: unknown) => finish({ kind: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
}

export type FromContender = { readonly kind: 'report'; readonly report: ContenderReport } | { readonly kind: 'error'; readonly message: string };

function finish(message: FromContender): void {
  if (process.send === undefined) {
    // Run by hand, without the orchestrator: print the report instead.
    console.log(JSON.stringify(message, null, 2));
    process.exit(message.kind === 'report' ? 0 : 1);
  }
  // Exit once the message is out, whatever handles a contender's libraries left open.
  process.send(message, () => process.exit(message.kind === 'report' ? 0 : 1));
}

export interface BenchDatabase {
  readonly url: string;
  /** The postmaster's pid when the server runs on this machine and /proc shows it; else null. */
  readonly postmasterPid: number | null;
  readonly settings: Readonly<Record<string, string>>;
  /** 'embedded' or 'DATABASE_URL'. */
  readonly source: string;
}

const reportedSettings = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers'];

async function describe(url: string, source: string): Promise<BenchDatabase> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const settings: Record<string, string> = {};
    for (const name of reportedSettings) {
      const row = (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]!;
      settings[name] = row[name]!;
    }
    const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // A backend's parent is the postmaster, if the server is on this machine at all.
    const postmaster = parentOf(backend);
    return { url, postmasterPid: postmaster ?? null, settings, source };
  } finally {
    await client.end();
  }
}

/** Runs `work` on a fresh database named `name`, on its own embedded server unless DATABASE_URL is set. */
export async function withDatabase<T>(name: string, work: (database: BenchDatabase) => Promise<T>): Promise<T> {
  const configured = process.env.DATABASE_URL;
  if (configured !== undefined && configured !== '') {
    return work(await describe(await freshDatabase(configured, name), 'DATABASE_URL'));
  }
  const temporary = await mkdtemp(path.join(os.tmpdir(), 'seckill-bench-'));
  const embedded = await startEmbeddedPostgres({ dataDirectory: path.join(temporary, 'data') });
  try {
    return await work(await describe(await freshDatabase(embedded.connectionString, name), 'embedded'));
  } finally {
    await embedded.stop();
    await rm(temporary, { recursive: true, force: true });
  }
}

/** The durability conditions of a PostgreSQL contender, as the report shows them. */
export function postgresConditions(database: BenchDatabase): Record<string, string> {
  return {
    postgres: `${database.settings.server_version} (${database.source})`,
    fsync: database.settings.fsync!,
    synchronous_commit: database.settings.synchronous_commit!,
    full_page_writes: database.settings.full_page_writes!,
    wal_sync_method: database.settings.wal_sync_method!,
  };
}
