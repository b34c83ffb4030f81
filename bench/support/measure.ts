/** Small helpers shared by the benchmarks: settings from the environment, percentiles, server facts. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/persistence/embeddedPostgres.js';

export function readPositiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

export function readPositiveIntegerList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return raw.split(',').map((part) => {
    const value = Number(part.trim());
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a comma-separated list of positive integers, got ${raw}`);
    return value;
  });
}

/** The value at quantile `q` (0..1) of an ascending array; 0 for an empty one. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function serverSettings(url: string): Promise<{ version: string; fsync: string; synchronousCommit: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    const fsync = (await client.query<{ fsync: string }>('SHOW fsync')).rows[0]!.fsync;
    const synchronousCommit = (await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!
      .synchronous_commit;
    return { version, fsync, synchronousCommit };
  } finally {
    await client.end();
  }
}

/** Drops and recreates `name` on the server, and returns its URL: every run starts empty. */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Runs `work` against the server in DATABASE_URL, or else against a fresh embedded PostgreSQL
 * in a temporary directory that is removed afterwards. `source` says which, for the report.
 */
export async function withBenchServer(work: (serverUrl: string, source: 'embedded' | 'DATABASE_URL') => Promise<void>): Promise<void> {
  const configured = process.env.DATABASE_URL;
  if (configured !== undefined && configured !== '') {
    await work(configured, 'DATABASE_URL');
    return;
  }
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-bench-'));
  const embedded = await startEmbeddedPostgres({ dataDirectory: path.join(dataDirectory, 'data') });
  try {
    await work(embedded.connectionString, 'embedded');
  } finally {
    await embedded.stop();
    await rm(dataDirectory, { recursive: true, force: true });
  }
}
