/**
 * Crashes: the engine process killed with SIGKILL in the middle of a load, and the database
 * server going away under load. Acknowledged orders must survive both, and the figures must
 * balance afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPool } from '../src/persistence/pools.js';
import { createEngine } from '../src/engine.js';
import { startEmbeddedPostgres } from '../src/persistence/embeddedPostgres.js';
import { startBuyingLoad } from './support/buyingLoad.js';
import { judge } from './support/replayJudge.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

const buyUntilKilledScript = fileURLToPath(new URL('./support/buyUntilKilled.ts', import.meta.url));

describe('an engine process killed with SIGKILL mid-load', () => {
  let database: TestDatabase;
  let admin: pg.Pool;
  beforeAll(async () => {
    database = await createTestDatabase('crash');
    admin = createPool({ connectionString: database.url, connectionsMax: 2 });
  });
  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });

  it('restarts with every acknowledged order present and the stock balanced', async () => {
    const itemId = '77';
    const setup = await createEngine({ databaseUrl: database.url });
    await setup.createItem({ id: itemId, name: 'Console', sellerId: '3', stock: 1_000_000 });
    await setup.close();

    const child = spawn(process.execPath, ['--import', 'tsx', buyUntilKilledScript, database.url, itemId], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acknowledged: string[] = [];
    const lines = createInterface({ input: child.stdout! });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const drained = new Promise((resolve) => lines.once('close', resolve));
    await new Promise<void>((resolve) => {
      lines.on('line', (line) => {
        if (line.startsWith('order ')) acknowledged.push(line.slice('order '.length));
        // Kill well inside the load: thousands acknowledged, more in flight.
        if (acknowledged.length === 3_000) resolve();
      });
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Lines already written by the child before it died are still in the pipe.
    await drained;

    const engine = await createEngine({ databaseUrl: database.url });
    const stored = new Set(await storedOrderIds(admin, itemId));
    const missing = acknowledged.filter((orderId) => !stored.has(orderId));
    expect(missing).toEqual([]);
    const figures = await storedFigures(admin, itemId);
    expect(figures.sold).toBe(stored.size);
    expect(figures.available + figures.reserved + figures.sold).toBe(1_000_000);
    expect(engine.item(itemId)).toMatchObject(figures);
    // The engine sells on from exactly there.
    expect(await engine.buy({ userId: '424242424' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    expect(engine.item(itemId)!.sold).toBe(figures.sold + 1);
    await engine.close();
  });
});

describe('a database that goes away mid-load', () => {
  it('answers unavailable, never a wrong figure, and serves again once it is back', async () => {
    const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-outage-'));
    let server = await startEmbeddedPostgres({ dataDirectory });
    const port = server.port;
    const engine = await createEngine({ databaseUrl: server.connectionString });
    const itemId = '88';
    await engine.createItem({ id: itemId, name: 'Camera', sellerId: '4', stock: 1_000_000 });

    const { acknowledged, stop } = startBuyingLoad(engine, itemId, 100);

    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThan(2_000), { timeout: 20_000 });
    await server.stop();
    // Buyers whose batch was out when the server went away wait to learn whether it is stored.
    // Everyone asking now hears `unavailable` at once, and nothing changes.
    const outageAsked = performance.now();
    let longestWaitMs = 0;
    const duringOutage = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        engine.buy({ userId: String(900_000_000 + index) }, { itemId, quantity: 1 }).then((result) => {
          longestWaitMs = Math.max(longestWaitMs, performance.now() - outageAsked);
          return result;
        }),
      ),
    );
    expect(duringOutage.every((result) => !result.ok && result.reason === 'unavailable')).toBe(true);
    const acknowledgedWhileDown = acknowledged.length;
    // While storage is down the engine shows exactly what it acknowledged: committed figures,
    // never the ones it decided and could not commit.
    expect(engine.item(itemId)!.sold).toBe(acknowledgedWhileDown);

    server = await startEmbeddedPostgres({ dataDirectory, port });
    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThan(acknowledgedWhileDown + 1_000), {
      timeout: 30_000,
      interval: 100,
    });
    await stop();

    const admin = createPool({ connectionString: server.connectionString, connectionsMax: 2 });
    try {
      const stored = new Set(await storedOrderIds(admin, itemId));
      expect(acknowledged.filter((orderId) => !stored.has(orderId))).toEqual([]);
      const figures = await storedFigures(admin, itemId);
      expect(figures.sold).toBe(stored.size);
      expect(figures.available + figures.sold).toBe(1_000_000);
      // The engine's figures are exactly what is committed.
      expect(engine.item(itemId)).toMatchObject(figures);
      await engine.close();
      // The fault suite's judge: the journal verifies, every order projected exactly once.
      const verdict = await judge(server.connectionString);
      console.log(
        `fault suite, PostgreSQL stopped under load and started again: ${acknowledged.length} orders acknowledged, lost 0, ` +
          `longest wait for a truthful answer during the outage ${longestWaitMs.toFixed(0)} ms, replay --verify exit ${verdict.code}`,
      );
      expect(verdict.violations).toEqual([]);
      expect(verdict.code).toBe(0);
    } finally {
      await admin.end();
      await engine.close();
      await server.stop();
      await rm(dataDirectory, { recursive: true, force: true });
    }
  });
});
