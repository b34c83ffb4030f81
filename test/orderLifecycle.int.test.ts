/**
 * An order's life after the sale, against a real PostgreSQL: read-your-writes while the
 * projection lags, pages of a buyer with thousands of orders, cancellation through the slice,
 * the history job beside concurrent queries, and ids that stay unique when the same simulated
 * clock starts twice on the same data directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../src/clock.js';
import { createEngine, type Engine, type OrderView } from '../src/engine.js';
import { OrderDatabases } from '../src/orders/orderDatabases.js';
import { createPool } from '../src/persistence/pools.js';
import { expectProjectedExactlyOnce, projectedRows } from './support/orderTables.js';
import { allStoredOrderIds, storedFigures } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;
let orderDatabases: OrderDatabases;

beforeAll(async () => {
  database = await createTestDatabase('order_lifecycle');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
  orderDatabases = await OrderDatabases.open([database.url, database.url], 8);
});

afterAll(async () => {
  await orderDatabases?.close();
  await admin?.end();
  await database?.drop();
});

/** Every page of a buyer's (or seller's) orders, following the cursors to the end. */
async function allPages(read: (cursor: string | undefined) => ReturnType<Engine['orderPage']>): Promise<OrderView[][]> {
  const pages: OrderView[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await read(cursor);
    if (!page.ok) throw new Error(`a page failed: ${page.message}`);
    pages.push(page.value.orders);
    if (page.value.next === null) return pages;
    cursor = page.value.next;
  }
}

function expectNewestFirst(orders: readonly OrderView[]): void {
  for (let index = 1; index < orders.length; index++) {
    const [newer, older] = [orders[index - 1]!, orders[index]!];
    expect(newer.createdAt > older.createdAt || (newer.createdAt === older.createdAt && BigInt(newer.orderId) > BigInt(older.orderId))).toBe(true);
  }
}

describe('reading your own orders', () => {
  it('shows every acknowledged order at once while the projection is held back, and exactly once after', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    await engine.createItem({ id: '71', name: 'Radio', sellerId: '31', stock: 10_000, perUserLimit: 10_000 });
    await engine.orderService.pauseProjection();
    const buyer = { userId: '5151' };
    const acknowledged: string[] = [];
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all(Array.from({ length: 5 }, () => engine.buy(buyer, { itemId: '71', quantity: 1 })));
      for (const result of results) if (result.ok) acknowledged.push(result.orderId);
      // Right after the acknowledgement, the buyer's query holds it, though no row is written.
      const shown = (await engine.orders(buyer.userId)).map((order) => order.orderId);
      expect(shown.sort()).toEqual([...acknowledged].sort());
    }
    expect((await projectedRows(orderDatabases, 'buyer')).filter((row) => row.userId === buyer.userId)).toEqual([]);
    engine.orderService.resumeProjection();
    expect(await engine.orderService.whenProjected()).toBe(true);
    const afterwards = await engine.orders(buyer.userId);
    expect(afterwards.map((order) => order.orderId).sort()).toEqual([...acknowledged].sort());
    expect(afterwards.every((order) => order.userId === buyer.userId && order.sellerId === '31' && order.status === 'confirmed')).toBe(true);
    await engine.close();
  });

  it('gives a buyer with thousands of orders pages, newest first, each order once, the unprojected ones too', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    await engine.createItem({ id: '72', name: 'Battery', sellerId: '32', stock: 10_000, perUserLimit: 10_000 });
    const buyer = { userId: '6262' };
    const buy = async (count: number) =>
      (await Promise.all(Array.from({ length: count }, () => engine.buy(buyer, { itemId: '72', quantity: 1 })))).flatMap((result) =>
        result.ok ? [result.orderId] : [],
      );
    const projected = await buy(2_000);
    expect(await engine.orderService.whenProjected()).toBe(true);
    await engine.orderService.pauseProjection();
    const unprojected = await buy(500);
    const pages = await allPages((cursor) => engine.orderPage(buyer.userId, { limit: 400, cursor }));
    expect(pages.map((page) => page.length)).toEqual([400, 400, 400, 400, 400, 400, 100]);
    const listed = pages.flat();
    expectNewestFirst(listed);
    expect(listed.map((order) => order.orderId).sort()).toEqual([...projected, ...unprojected].sort());
    // The page size is bounded, and a cursor must be one the engine made.
    expect(await engine.orderPage(buyer.userId, { limit: 1_001 })).toMatchObject({ ok: false, error: 'invalid' });
    expect(await engine.orderPage(buyer.userId, { cursor: 'not-a-cursor' })).toMatchObject({ ok: false, error: 'invalid' });
    engine.orderService.resumeProjection();
    await engine.close();
  });
});

describe('cancelling a confirmed order', () => {
  it('puts its stock back on sale, frees the buyer limit, shows cancelled in both dimensions, and changes nothing the second time', async () => {
    let engine = await createEngine({ databaseUrl: database.url });
    await engine.createItem({ id: '73', name: 'Lamp', sellerId: '33', stock: 10, perUserLimit: 1, slices: 2 });
    const bought = await engine.buy({ userId: '7373' }, { itemId: '73', quantity: 1 });
    const reservation = await engine.reserve({ userId: '7474' }, { itemId: '73', quantity: 1 });
    if (!bought.ok || !reservation.ok) throw new Error('buying failed');
    const confirmed = await engine.confirm({ userId: '7474' }, reservation.token);
    if (!confirmed.ok) throw new Error('confirming failed');
    expect(engine.item('73')).toMatchObject({ available: 8, sold: 2 });
    expect(await engine.buy({ userId: '7373' }, { itemId: '73', quantity: 1 })).toMatchObject({ reason: 'limit_exceeded' });

    // Cancelled at once, before the projection could have written the order.
    const cancelled = await engine.cancelOrder(bought.orderId);
    expect(cancelled).toMatchObject({ ok: true, value: { orderId: bought.orderId, userId: '7373', sellerId: '33', status: 'cancelled' } });
    expect(engine.item('73')).toMatchObject({ stock: 10, available: 9, sold: 1 });
    expect(await storedFigures(admin, '73')).toMatchObject({ available: 9, sold: 1 });
    const buyerView = (await engine.orders('7373')).find((order) => order.orderId === bought.orderId);
    expect(buyerView?.status).toBe('cancelled');
    expect((await engine.orderService.sellerView(bought.orderId, '33'))?.status).toBe('cancelled');

    // Twice, and at the same time: nothing more comes back.
    const again = await Promise.all([engine.cancelOrder(bought.orderId), engine.cancelOrder(bought.orderId)]);
    expect(again).toEqual([cancelled, cancelled]);
    expect(engine.item('73')).toMatchObject({ available: 9, sold: 1 });

    // Two cancellations of the confirmed reservation at once: one stock return.
    const both = await Promise.all([engine.cancelOrder(confirmed.orderId), engine.cancelOrder(confirmed.orderId)]);
    expect(both.map((result) => result.ok && result.value.status)).toEqual(['cancelled', 'cancelled']);
    expect(engine.item('73')).toMatchObject({ available: 10, sold: 0 });

    // The buyer's limit is free again.
    expect(await engine.buy({ userId: '7373' }, { itemId: '73', quantity: 1 })).toMatchObject({ ok: true });
    expect(engine.item('73')).toMatchObject({ available: 9, sold: 1 });

    expect(await engine.cancelOrder('12345678901')).toMatchObject({ ok: false, error: 'not_found' });
    expect(await engine.cancelOrder('0')).toMatchObject({ ok: false, error: 'invalid' });

    // After a restart the cancellation holds, and is still not repeated.
    await engine.close();
    engine = await createEngine({ databaseUrl: database.url });
    expect(engine.item('73')).toMatchObject({ available: 9, sold: 1 });
    expect(await engine.cancelOrder(bought.orderId)).toEqual(cancelled);
    expect(engine.item('73')).toMatchObject({ available: 9, sold: 1 });
    const rows = [...(await projectedRows(orderDatabases, 'buyer')), ...(await projectedRows(orderDatabases, 'seller'))];
    expect(rows.filter((row) => row.orderId === bought.orderId).map((row) => row.status)).toEqual([2, 2]);
    await engine.close();
  });
});

describe('the history job', () => {
  it('moves old orders beside concurrent buyer and seller queries that never miss or double one', async () => {
    // Starting after every id this database has leased so far, so ids follow this clock (the
    // history job finds old orders by their ids' ticks; see src/orders/history.ts).
    const clock = new SimulatedClock(Date.now() + 3_600_000);
    // The job's own schedule is pushed out of the way, so this test's run is the one that moves.
    const engine = await createEngine({
      databaseUrl: database.url,
      clock,
      orderHistoryBatchRows: 7,
      orderHistoryIntervalMs: 10 * 365 * 24 * 3_600_000,
    });
    await engine.createItem({ id: '74', name: 'Clock', sellerId: '34', stock: 10_000, perUserLimit: 10_000, startsAt: clock.now() });
    const buyers = ['8001', '8002', '8103'];
    const bought = new Map<string, string[]>(buyers.map((userId) => [userId, []]));
    const byDay: string[][] = [];
    for (let day = 0; day < 6; day++) {
      byDay.push([]);
      for (const userId of buyers) {
        const results = await Promise.all(Array.from({ length: 40 }, () => engine.buy({ userId }, { itemId: '74', quantity: 1 })));
        for (const result of results) {
          if (!result.ok) continue;
          bought.get(userId)!.push(result.orderId);
          byDay[day]!.push(result.orderId);
        }
      }
      clock.advance(20 * 24 * 3_600_000);
    }
    expect(await engine.orderService.whenProjected()).toBe(true);
    const allOrders = [...bought.values()].flat();
    // One order cancelled before the move, so a cancelled order moves too.
    expect(await engine.cancelOrder(bought.get('8001')![0]!)).toMatchObject({ ok: true });

    let reads = 0;
    let moving = true;
    const readers = [
      ...buyers.map(async (userId) => {
        while (moving) {
          const listed = (await allPages((cursor) => engine.orderPage(userId, { limit: 13, cursor }))).flat();
          expect(listed.map((order) => order.orderId).sort()).toEqual([...bought.get(userId)!].sort());
          expectNewestFirst(listed);
          reads++;
        }
      }),
      (async () => {
        while (moving) {
          const listed = (await allPages((cursor) => engine.sellerOrderPage('34', { limit: 50, cursor }))).flat();
          expect(listed.map((order) => order.orderId).sort()).toEqual([...allOrders].sort());
          reads++;
        }
      })(),
    ];
    const run = await engine.orderService.moveHistory().finally(() => {
      moving = false;
    });
    await Promise.all(readers);
    expect(reads).toBeGreaterThan(4);
    // Now 120 days after the first day: the orders of days 0 and 20 are past 90 days (and the
    // earlier tests' orders, made on the real clock), the later ones are not.
    const moved = new Set((await projectedRows(orderDatabases, 'buyer')).filter((row) => row.history).map((row) => row.orderId));
    expect([...byDay[0]!, ...byDay[1]!].filter((orderId) => !moved.has(orderId))).toEqual([]);
    expect(byDay.slice(2).flat().filter((orderId) => moved.has(orderId))).toEqual([]);
    const movedSellerRows = (await projectedRows(orderDatabases, 'seller')).filter((row) => row.history);
    expect(run.moved).toBe(moved.size + movedSellerRows.length);
    await expectProjectedExactlyOnce(orderDatabases, await allStoredOrderIds([admin]));
    expect((await engine.orders('8001')).find((order) => order.orderId === bought.get('8001')![0])?.status).toBe('cancelled');

    // An order cancelled after it moved is cancelled in history, in both dimensions.
    const oldOrder = bought.get('8002')![0]!;
    expect(await engine.cancelOrder(oldOrder)).toMatchObject({ ok: true, value: { status: 'cancelled' } });
    const rows = [...(await projectedRows(orderDatabases, 'buyer')), ...(await projectedRows(orderDatabases, 'seller'))].filter(
      (row) => row.orderId === oldOrder,
    );
    expect(rows.map((row) => [row.history, row.status])).toEqual([
      [true, 2],
      [true, 2],
    ]);
    // A second run finds nothing left to move.
    expect(await engine.orderService.moveHistory()).toEqual({ moved: 0, batches: 0 });
    await engine.close();
  });
});

describe('order ids when the same simulated clock starts twice on one data directory', () => {
  it('never collide: the second run continues above the first run’s high-water mark', async () => {
    const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-order-ids-'));
    try {
      const runs: string[][] = [];
      for (let run = 0; run < 2; run++) {
        // The same start both times: SimulatedClock's default, 2026-01-01.
        const clock = new SimulatedClock();
        const engine = await createEngine({ dataDirectory, clock });
        if (run === 0) await engine.createItem({ id: '75', name: 'Globe', sellerId: '35', stock: 1_000, startsAt: clock.now() });
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, index) => engine.buy({ userId: String(90_000 + run * 1_000 + index) }, { itemId: '75', quantity: 1 })),
        );
        expect(results.filter((result) => !result.ok)).toEqual([]);
        runs.push(results.flatMap((result) => (result.ok ? [result.orderId] : [])));
        expect(await engine.orderService.whenProjected()).toBe(true);
        await engine.close();
      }
      const [first, second] = runs as [string[], string[]];
      expect(new Set([...first, ...second]).size).toBe(200);
      const lastOfFirst = first.reduce((max, id) => (BigInt(id) > BigInt(max) ? id : max));
      expect(second.every((id) => BigInt(id) > BigInt(lastOfFirst))).toBe(true);

      // Both runs' orders are in the projection, each once.
      const engine = await createEngine({ dataDirectory, clock: new SimulatedClock() });
      const seller = (await engine.sellerOrders('35')).map((order) => order.orderId);
      expect(seller.sort()).toEqual([...first, ...second].sort());
      await engine.close();
    } finally {
      await rm(dataDirectory, { recursive: true, force: true });
    }
  });
});
