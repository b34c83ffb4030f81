/**
 * Orders over the real server: read-your-writes under load over HTTP and WebSocket, pages with
 * a cursor, the administrator's cancellation, the projection metrics, and a readiness that
 * waits for the order projection after a start.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { OrderView } from '../src/engine.js';
import { Harness } from './e2e/harness.js';
import { commitWait } from './support/waits.js';

const generousLimits = {
  userRequestsPerSecond: 100_000,
  userBurstRequests: 100_000,
  connectionRequestsPerSecond: 100_000,
  connectionBurstRequests: 100_000,
};

/** Lets a test hold the projection's batches before their commit, across the harness's restarts. */
let holdProjection: Promise<void> | null = null;

let harness: Harness;

beforeAll(async () => {
  harness = await Harness.start({
    limits: generousLimits,
    engine: { beforeProjectionCommit: () => holdProjection ?? Promise.resolve() },
  });
});

afterAll(async () => {
  await harness?.stop();
});

let nextUser = 3_000_000;
const newUser = (): string => String(nextUser++);

async function userOrders(token: string, query = ''): Promise<{ status: number; orders: OrderView[]; next: string | null }> {
  const response = await fetch(`${harness.httpUrl}/orders${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as OrderView[];
  return { status: response.status, orders: body, next: response.headers.get('x-next-cursor') };
}

describe('read-your-writes under load', () => {
  it('every order reply is followed at once by a GET /orders and a WebSocket orders reply that contain it', async () => {
    const item = await harness.createItem({ stock: 1_000_000, perUserLimit: 1_000_000 });
    // A crowd buying in-process keeps the projection busy, so the buyers below race it.
    let crowdRunning = true;
    let crowdUser = 9_000_000;
    const crowd = Array.from({ length: 200 }, async () => {
      while (crowdRunning) await harness.engine.buy({ userId: String(crowdUser++) }, { itemId: item.id, quantity: 1 });
    });
    const buyers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const userId = newUser();
        return { userId, token: await harness.token(userId), client: await harness.connect(userId), orders: [] as string[] };
      }),
    );
    let checks = 0;
    let unprojectedAtCheck = 0;
    // The crowd stops whatever happens below, so that a failure is reported as itself and not
    // as the crowd's calls into the engine the harness closes afterwards.
    try {
      for (let round = 0; round < 20; round++) {
        // Half of the rounds with the projection held back altogether.
        if (round === 10) await harness.engine.orderService.pauseProjection();
        await Promise.all(
          buyers.map(async (buyer) => {
            const reply = await buyer.client.request({ type: 'buy', item: item.id, qty: 1 });
            expect(reply.type).toBe('order');
            const orderId = reply.orderId as string;
            buyer.orders.push(orderId);
            if (harness.engine.orderService.pendingOrders > 0) unprojectedAtCheck++;
            const [http, ws] = await Promise.all([userOrders(buyer.token), buyer.client.request({ type: 'orders' })]);
            expect(http.status).toBe(200);
            expect(http.orders.map((order) => order.orderId).sort()).toEqual([...buyer.orders].sort());
            expect((ws.orders as OrderView[]).map((order) => order.orderId).sort()).toEqual([...buyer.orders].sort());
            checks++;
          }),
        );
      }
    } finally {
      harness.engine.orderService.resumeProjection();
      crowdRunning = false;
      await Promise.allSettled(crowd);
    }
    for (const outcome of await Promise.allSettled(crowd)) expect(outcome.status).toBe('fulfilled');
    expect(checks).toBe(400);
    expect(unprojectedAtCheck).toBeGreaterThan(200);
    expect(await harness.engine.orderService.whenProjected()).toBe(true);
    for (const buyer of buyers) {
      expect((await userOrders(buyer.token)).orders.map((order) => order.orderId).sort()).toEqual([...buyer.orders].sort());
    }
  });
});

describe('a purchase retried with its key', () => {
  it('is listed once, while the projection does not hold it yet and after', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 5 });
    const userId = newUser();
    const token = await harness.token(userId);
    const client = await harness.connect(userId);
    await harness.engine.orderService.pauseProjection();
    try {
      const buy = { type: 'buy', item: item.id, qty: 1, idempotencyKey: 'retried-once' };
      const first = await client.request(buy);
      // The retry of a client that did not hear the first answer: the same order, acknowledged again.
      const again = await client.request(buy);
      expect(first.type).toBe('order');
      expect(again).toMatchObject({ type: 'order', orderId: first.orderId });
      expect(harness.engine.orderService.pendingOrders).toBeGreaterThan(0);
      expect((await userOrders(token)).orders.map((order) => order.orderId)).toEqual([first.orderId]);
      expect(((await client.request({ type: 'orders' })).orders as OrderView[]).map((order) => order.orderId)).toEqual([first.orderId]);
    } finally {
      harness.engine.orderService.resumeProjection();
    }
    await vi.waitFor(() => expect(harness.engine.orderService.pendingOrders).toBe(0), commitWait);
    expect((await userOrders(token)).orders).toHaveLength(1);
  });
});

describe('pages of orders', () => {
  it('follow x-next-cursor over HTTP and next over WebSocket, newest first, each order once', async () => {
    const item = await harness.createItem({ stock: 100, perUserLimit: 100, sellerId: '4747' });
    const userId = newUser();
    const token = await harness.token(userId);
    const bought: string[] = [];
    for (let index = 0; index < 11; index++) {
      const order = await harness.engine.buy({ userId }, { itemId: item.id, quantity: 1 });
      if (order.ok) bought.push(order.orderId);
    }
    const seen: string[] = [];
    let query = '?limit=4';
    const sizes: number[] = [];
    for (;;) {
      const page = await userOrders(token, query);
      expect(page.status).toBe(200);
      sizes.push(page.orders.length);
      seen.push(...page.orders.map((order) => order.orderId));
      if (page.next === null) break;
      query = `?limit=4&cursor=${encodeURIComponent(page.next)}`;
    }
    expect(sizes).toEqual([4, 4, 3]);
    expect(seen).toEqual([...bought].reverse());

    const client = await harness.connect(userId);
    const first = await client.request({ type: 'orders', limit: 5 });
    expect((first.orders as OrderView[]).map((order) => order.orderId)).toEqual(seen.slice(0, 5));
    const second = await client.request({ type: 'orders', limit: 5, cursor: first.next });
    expect((second.orders as OrderView[]).map((order) => order.orderId)).toEqual(seen.slice(5, 10));
    expect(await client.request({ type: 'orders', limit: 0 })).toMatchObject({ type: 'rejected', reason: 'invalid' });
    expect(await client.request({ type: 'orders', cursor: 'nonsense' })).toMatchObject({ type: 'rejected', reason: 'invalid' });

    expect((await userOrders(token, '?limit=0')).status).toBe(400);
    expect((await harness.http('GET', '/orders?cursor=nonsense', { token })).status).toBe(400);
    const seller = await harness.admin('GET', '/admin/orders?seller=4747&limit=10');
    expect((seller.body as OrderView[]).map((order) => order.orderId)).toEqual(seen.slice(0, 10));
  });
});

describe('POST /admin/orders/:orderId/cancel', () => {
  it('cancels a confirmed order once: the stock and the limit come back, both dimensions show it cancelled', async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 1, sellerId: '5858' });
    const userId = newUser();
    const client = await harness.connect(userId);
    const order = await client.request({ type: 'buy', item: item.id, qty: 1 });
    expect(order.type).toBe('order');
    const path = `/admin/orders/${order.orderId as string}/cancel`;
    expect((await harness.http('POST', path, { token: await harness.token(userId) })).status).toBe(401);

    const cancelled = await harness.admin('POST', path);
    expect(cancelled).toMatchObject({ status: 200, body: { orderId: order.orderId, status: 'cancelled', userId, sellerId: '5858' } });
    expect(await harness.admin('POST', path)).toMatchObject({ status: 200, body: cancelled.body as object });
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 5, sold: 0 });
    const mine = (await client.request({ type: 'orders' })).orders as OrderView[];
    expect(mine.find((view) => view.orderId === order.orderId)?.status).toBe('cancelled');
    const sellers = (await harness.admin('GET', '/admin/orders?seller=5858')).body as OrderView[];
    expect(sellers.find((view) => view.orderId === order.orderId)?.status).toBe('cancelled');
    // The limit is free again.
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });

    expect((await harness.admin('POST', '/admin/orders/12345678901/cancel')).status).toBe(404);
    expect((await harness.admin('POST', '/admin/orders/abc/cancel')).status).toBe(400);
  });
});

describe('after a start', () => {
  it('readyz waits until the order projection has caught up, and the metrics show the lag', async () => {
    const item = await harness.createItem({ stock: 1_000, perUserLimit: 1 });
    await Promise.all(Array.from({ length: 50 }, () => harness.engine.buy({ userId: newUser() }, { itemId: item.id, quantity: 1 })));
    // Journal events the projection has not taken in when the engine stops.
    await harness.engine.orderService.pauseProjection();
    let release!: () => void;
    holdProjection = new Promise((resolve) => (release = resolve));
    await Promise.all(Array.from({ length: 50 }, () => harness.engine.buy({ userId: newUser() }, { itemId: item.id, quantity: 1 })));
    const restarting = harness.restart();
    // The engine's close waits a while for the projection, which is held: it gives up, and starts again.
    await restarting;
    expect(await harness.http('GET', '/readyz')).toMatchObject({ status: 503, body: { reason: 'projecting orders' } });
    // The gauge shows the lag once the projector has looked at the journals after the start.
    await vi.waitFor(async () => {
      expect((await harness.http('GET', '/metrics')).text).toMatch(/seckill_projection_lag_events [1-9]/);
    }, commitWait);
    holdProjection = null;
    release();
    expect(await harness.engine.orderService.whenProjected()).toBe(true);
    expect(await harness.http('GET', '/readyz')).toMatchObject({ status: 200 });
    const after = await harness.http('GET', '/metrics');
    expect(after.text).toContain('seckill_projection_lag_events 0');
    expect(after.text).toMatch(/seckill_projection_lag_seconds_count [1-9]/);
  });
});
