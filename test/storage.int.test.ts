/**
 * Where an engine keeps its data, as test authors and operators meet it: throw-away storage
 * per engine, so that parallel test files never share a data directory or a database, and a
 * start against a PostgreSQL that is not there yet.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../src/clock.js';
import { createEngine, type Engine, type EngineOptions } from '../src/engine.js';
import { ConfigurationError, StartupError } from '../src/errors.js';
import { waitForDatabase } from '../src/persistence/databaseWait.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('storage');
});

afterAll(async () => {
  await database?.drop();
});

/** The engine's log lines, kept for the test to read. */
function recordingLog(): { lines: { level: string; message: string }[]; log: NonNullable<EngineOptions['log']> } {
  const lines: { level: string; message: string }[] = [];
  return { lines, log: (level, message) => void lines.push({ level, message }) };
}

async function sellOut(engine: Engine): Promise<number> {
  const created = await engine.createItem({ id: '1', name: 'Phone', sellerId: '7', stock: 2 });
  expect(created.ok).toBe(true);
  const outcomes = await Promise.all(['11', '12', '13'].map((userId) => engine.buy({ userId }, { itemId: '1', quantity: 1 })));
  return outcomes.filter((outcome) => outcome.ok).length;
}

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('throw-away storage per engine', () => {
  it('gives two embedded engines started side by side a data directory each, and removes it at close', async () => {
    const [first, second] = [recordingLog(), recordingLog()];
    const engines = await Promise.all([
      createEngine({ temporary: true, clock: new SimulatedClock(), log: first.log }),
      createEngine({ temporary: true, clock: new SimulatedClock(), log: second.log }),
    ]);
    // The same item id in both, as two copies of one test file would create it.
    expect(await Promise.all(engines.map(sellOut))).toEqual([2, 2]);

    const directories = [first, second].map(({ lines }) => {
      const line = lines.find(({ message }) => message.startsWith('embedded PostgreSQL on 127.0.0.1:'));
      expect(line?.message).toMatch(/\(temporary, removed at close\); to look inside while it runs: psql postgres:\/\/postgres:password@127\.0\.0\.1:\d+\/seckill$/);
      return /with its data in (\S+) \(temporary/.exec(line!.message)![1]!;
    });
    expect(directories[0]).not.toBe(directories[1]);
    expect(directories.every((directory) => existsSync(directory))).toBe(true);

    await Promise.all(engines.map((engine) => engine.close()));
    expect(directories.map((directory) => existsSync(directory))).toEqual([false, false]);
  });

  it('gives two engines on one server a database each, and drops it at close', async () => {
    const [first, second] = [recordingLog(), recordingLog()];
    const engines = await Promise.all([
      createEngine({ databaseUrl: database.url, temporary: true, log: first.log }),
      createEngine({ databaseUrl: database.url, temporary: true, log: second.log }),
    ]);
    // Without `temporary`, the second would be refused: one engine per database.
    expect(await Promise.all(engines.map(sellOut))).toEqual([2, 2]);

    const names = [first, second].map(({ lines }) => {
      const line = lines.find(({ message }) => message.startsWith('temporary databases '));
      return /\/(seckill_temporary_[0-9a-f]+), removed at close$/.exec(line!.message)![1]!;
    });
    expect(names[0]).not.toBe(names[1]);
    expect(await Promise.all(names.map(databaseExists))).toEqual([true, true]);

    await Promise.all(engines.map((engine) => engine.close()));
    expect(await Promise.all(names.map(databaseExists))).toEqual([false, false]);
  });

  it('refuses `temporary` together with a data directory, since one of them would be ignored', async () => {
    await expect(createEngine({ temporary: true, dataDirectory: './somewhere' })).rejects.toThrow(ConfigurationError);
  });
});

describe('starting while PostgreSQL is not there yet', () => {
  it('waits, saying for what, and starts once the database answers', async () => {
    const proxy = await TcpProxy.start(new URL(database.url).hostname, Number(new URL(database.url).port));
    try {
      // Connections are dropped at once, as by a PostgreSQL still starting behind a port forward.
      proxy.cut();
      const { lines, log } = recordingLog();
      const started = createEngine({ databaseUrl: proxy.route(database.url), databaseWaitMs: 30_000, log });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      proxy.restore();
      const engine = await started;
      try {
        expect(await sellOut(engine)).toBe(2);
      } finally {
        await engine.close();
      }
      const waiting = lines.filter(({ message }) => message.startsWith('waiting for PostgreSQL'));
      expect(waiting.length).toBeGreaterThanOrEqual(2);
      expect(waiting[0]).toEqual({
        level: 'warn',
        message: expect.stringMatching(
          new RegExp(
            `^waiting for PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}${new URL(database.url).pathname}: ` +
              'Connection terminated unexpectedly; trying again in 250 ms, giving up in (29|30) s$',
          ),
        ),
      });
    } finally {
      await proxy.close();
    }
  });

  it('gives up after the time it was given, with one line naming the database, the reason and the fix', async () => {
    const port = await closedPort();
    const { lines, log } = recordingLog();
    const startedAt = Date.now();
    const failure = await createEngine({ databaseUrl: `postgres://shop:secret@127.0.0.1:${port}/sales`, databaseWaitMs: 1_200, log }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StartupError);
    expect((failure as Error).message).toBe(
      `PostgreSQL at 127.0.0.1:${port}/sales did not answer within 1 s: connection refused (ECONNREFUSED); ` +
        'fix: start PostgreSQL, or correct the host and port in DATABASE_URL; SECKILL_DATABASE_WAIT_MS sets how long to wait',
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(700);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(lines.filter(({ message }) => message.includes('secret'))).toEqual([]);
  });

  it('does not wait for what waiting cannot fix: a database that does not exist', async () => {
    const missing = new URL(database.url);
    missing.pathname = '/no_such_database_here';
    const startedAt = Date.now();
    await expect(waitForDatabase(missing.toString(), { waitMs: 30_000, log: () => undefined })).rejects.toThrow(
      `PostgreSQL at ${missing.hostname}:${missing.port}/no_such_database_here refused the engine: ` +
        'database "no_such_database_here" does not exist (3D000); fix: create the database (createdb NAME), or correct its name in DATABASE_URL',
    );
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });
});

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
