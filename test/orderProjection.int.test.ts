/**
 * The order projection against a real PostgreSQL: the journal is the outbox, and every order
 * reaches its buyer table and its seller table exactly once, through many slices, through a
 * projector that fails inside a batch, and through a process killed in the middle of one.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine.js';
import { OrderDatabases } from '../src/orders/orderDatabases.js';
import { decomposeOrderId, lastTwoDigits } from '../src/orders/orderIds.js';
import { createPool } from '../src/persistence/pools.js';
import { expectProjectedExactlyOnce, projectedRows } from './support/orderTables.js';
import { allStoredOrderIds, storedOrderIdsAcross } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

const projectUntilKilledScript = fileURLToPath(new URL('./support/projectUntilKilled.ts', import.meta.url));

let database: TestDatabase;
let inventory2: TestDatabase;
let admin: pg.Pool;
let admin2: pg.Pool;
/** The engine's default beside a DATABASE_URL: two order databases as schemas in it, 8 tables each. */
let orderDatabases: OrderDatabases;

beforeAll(async () => {
  database = await createTestDatabase('order_projection');
  inventory2 = await createTestDatabase('order_projection_inventory2');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
  admin2 = createPool({ connectionString: inventory2.url, connectionsMax: 2 });
  orderDatabases = await OrderDatabases.open([database.url, database.url], 8);
});

function bothDatabases() {
  return { databaseUrl: database.url, extraInventoryDatabaseUrls: [inventory2.url] };
}

afterAll(async () => {
  await orderDatabases?.close();
  await admin?.end();
  await admin2?.end();
  await database?.drop();
  await inventory2?.drop();
});

describe('a sale of 10,000 orders over several slices', () => {
  it('puts every order exactly once in its buyer table and exactly once in its seller table', async () => {
    const engine = await createEngine(bothDatabases());
    // Two items of two sellers, four slices each, spread over both inventory databases.
    for (const [itemId, sellerId] of [['61', '7'], ['62', '12345']] as const) {
      // More stock than buyers: this test is about the orders, not about the last units.
      expect((await engine.createItem({ id: itemId, name: 'Kettle', sellerId, stock: 6_000, slices: 4 })).ok).toBe(true);
    }
    const results = await Promise.all(
      Array.from({ length: 10_000 }, (_, index) =>
        engine.buy({ userId: String(700_000 + index * 37) }, { itemId: index % 2 === 0 ? '61' : '62', quantity: 1 }),
      ),
    );
    const orders = results.flatMap((result, index) => (result.ok ? [{ orderId: result.orderId, index }] : []));
    expect(results.filter((result) => !result.ok)).toEqual([]);
    expect(orders).toHaveLength(10_000);
    // Each id carries its buyer's and its seller's last two digits.
    for (const { orderId, index } of orders) {
      expect(decomposeOrderId(orderId)).toMatchObject({
        buyerDigits: lastTwoDigits(String(700_000 + index * 37)),
        sellerDigits: index % 2 === 0 ? 7 : 45,
      });
    }
    expect(await engine.orderService.whenProjected()).toBe(true);
    await expectProjectedExactlyOnce(orderDatabases, orders.map((order) => order.orderId));
    // The journals hold exactly these orders too: the projection is of them and nothing else.
    const journaled = [...(await storedOrderIdsAcross([admin, admin2], '61')), ...(await storedOrderIdsAcross([admin, admin2], '62'))];
    expect(journaled.sort()).toEqual(orders.map((order) => order.orderId).sort());
    // The hot transaction no longer writes order rows next to the stock.
    expect((await admin.query(`SELECT to_regclass('seckill.order_order') AS table`)).rows[0].table).toBeNull();
    await engine.close();
  });
});

describe('a projector that fails inside a batch', () => {
  it('redoes the batch from its stored positions: no order is doubled or lost', async () => {
    let failures = 0;
    const engine = await createEngine({
      ...bothDatabases(),
      // Order database 1 writes the rows of its first three batches and then fails before the
      // commit, while order database 0 commits the same events.
      beforeProjectionCommit: async (orderDatabaseIndex) => {
        if (orderDatabaseIndex === 1 && failures < 3) {
          failures++;
          throw new Error('the projector died here');
        }
      },
    });
    await engine.createItem({ id: '63', name: 'Toaster', sellerId: '8', stock: 2_000, slices: 2 });
    const waves: string[] = [];
    for (let wave = 0; wave < 4; wave++) {
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, index) => engine.buy({ userId: String(800_000 + wave * 1_000 + index) }, { itemId: '63', quantity: 1 })),
      );
      waves.push(...results.flatMap((result) => (result.ok ? [result.orderId] : [])));
    }
    expect(waves).toHaveLength(1_200);
    expect(await engine.orderService.whenProjected()).toBe(true);
    expect(failures).toBe(3);
    const journaled = await allStoredOrderIds([admin, admin2]);
    expect(journaled).toEqual(expect.arrayContaining(waves));
    await expectProjectedExactlyOnce(orderDatabases, journaled);
    await engine.close();
  });
});

describe('an engine process killed inside a projection batch', () => {
  it('leaves journaled orders unprojected, and the next start projects them with no duplicates and no gaps', async () => {
    const setup = await createEngine(bothDatabases());
    await setup.createItem({ id: '64', name: 'Blender', sellerId: '9', stock: 1_000_000, slices: 2 });
    await setup.close();
    const before = new Set((await projectedRows(orderDatabases, 'buyer')).map((row) => row.orderId));

    const child = spawn(process.execPath, ['--import', 'tsx', projectUntilKilledScript, database.url, inventory2.url, '64', '5'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acknowledged: string[] = [];
    const lines = createInterface({ input: child.stdout! });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const drained = new Promise((resolve) => lines.once('close', resolve));
    lines.on('line', (line) => {
      if (line.startsWith('order ')) acknowledged.push(line.slice('order '.length));
    });
    expect(await exited).toBe('SIGKILL');
    await drained;
    expect(acknowledged.length).toBeGreaterThan(0);

    // What the kill left: every acknowledged order is in the journal, and the projection is
    // behind it, in order database 1 at least (its open batch died with the process).
    const journaled = await storedOrderIdsAcross([admin, admin2], '64');
    const journaledSet = new Set(journaled);
    expect(acknowledged.filter((orderId) => !journaledSet.has(orderId))).toEqual([]);
    const projectedBefore = (await projectedRows(orderDatabases, 'buyer')).filter((row) => !before.has(row.orderId));
    expect(projectedBefore.length).toBeLessThan(journaled.length);

    const engine = await createEngine(bothDatabases());
    expect(await engine.orderService.whenProjected()).toBe(true);
    expect(engine.ready).toBe(true);
    await expectProjectedExactlyOnce(orderDatabases, await allStoredOrderIds([admin, admin2]));
    await engine.close();
  });
});
