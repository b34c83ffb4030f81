/**
 * PostgreSQL that answers slowly (a proxy that holds its answers back), under the load of a
 * sale. Two cases the engine keeps apart, each answered with the truth:
 * - the item sells out: every buyer hears `order` or `sold_out`, however slow the commits;
 * - storage falls behind the orders: past a bound on the events waiting for the journal, new
 *   requests hear `unavailable`, and nothing changed for them; never `sold_out` for an item
 *   that has stock.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createEngine, type Engine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';
import { tally } from './support/tally.js';

let database: TestDatabase;
let admin: pg.Pool;
let proxy: TcpProxy;

beforeAll(async () => {
  database = await createTestDatabase('slow_database');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
  const target = new URL(database.url);
  proxy = await TcpProxy.start(target.hostname, Number(target.port));
});

afterAll(async () => {
  await proxy?.close();
  await admin?.end();
  await database?.drop();
});

type Outcome = Awaited<ReturnType<Engine['buy']>>;

describe('a slow PostgreSQL (every answer 150 ms late)', () => {
  it('tells a crowd on a sold-out item order or sold_out, nothing else, though it is larger than the inbox', async () => {
    const engine = await createEngine({ databaseUrl: proxy.route(database.url), backlogEventsMax: 2_000, mailboxDepthMax: 1_000 });
    onTestFinished(async () => {
      proxy.delay(0);
      await engine.close();
    });
    const itemId = '601';
    await engine.createItem({ id: itemId, name: 'Drum', sellerId: '2', stock: 500 });
    proxy.delay(150);
    const results = await Promise.all(
      Array.from({ length: 20_000 }, (_, index) => engine.buy({ userId: String(100_000 + index) }, { itemId, quantity: 1 })),
    );
    expect(tally(results)).toEqual({ order: 500, sold_out: 19_500 });
    proxy.delay(0);
    expect(await storedFigures(admin, itemId)).toMatchObject({ available: 0, sold: 500 });
  });

  it('past the bound on events waiting for the journal, answers unavailable and changes nothing for those', async () => {
    const engine = await createEngine({ databaseUrl: proxy.route(database.url), backlogEventsMax: 2_000 });
    onTestFinished(async () => {
      proxy.delay(0);
      await engine.close();
    });
    const itemId = '602';
    await engine.createItem({ id: itemId, name: 'Horn', sellerId: '2', stock: 1_000_000 });
    proxy.delay(150);
    // Waves of buyers, faster than a slow database commits them.
    const waves: Promise<Outcome[]>[] = [];
    for (let wave = 0; wave < 10; wave++) {
      waves.push(
        Promise.all(Array.from({ length: 1_500 }, (_, index) => engine.buy({ userId: String(200_000 + wave * 10_000 + index) }, { itemId, quantity: 1 }))),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const results = (await Promise.all(waves)).flat();
    const counts = tally(results);
    // Only the two truthful answers: the item has stock, so never sold_out.
    expect(Object.keys(counts).sort()).toEqual(['order', 'unavailable']);
    expect(counts.unavailable).toBeGreaterThan(0);
    proxy.delay(0);
    await engine.idle();
    // `unavailable` changed nothing: exactly the orders told are stored.
    const told = results.flatMap((result) => (result.ok ? [result.orderId] : []));
    expect(new Set(await storedOrderIds(admin, itemId))).toEqual(new Set(told));
    expect(await storedFigures(admin, itemId)).toMatchObject({ sold: told.length, available: 1_000_000 - told.length });
    // Once the database keeps up again, the same item sells.
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
  });
});
