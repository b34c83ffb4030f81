/**
 * Slow readers, end to end: a client that stops reading while the server has much to send it.
 * Its stock pushes are held back and merged into the latest figures, its replies all arrive,
 * everybody else is served as before, and past `wsBufferedBytesMax` it is closed with 4408.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './e2e/harness.js';
import { RawWebSocket } from './e2e/rawClient.js';

const generousRates = {
  userRequestsPerSecond: 100_000,
  userBurstRequests: 100_000,
  connectionRequestsPerSecond: 100_000,
  connectionBurstRequests: 100_000,
};
/** Orders of the heavy user: each `orders` reply lists them all, about 170 bytes apiece. */
const heavyOrders = 300;
const heavyUser = '9001';

let harness: Harness;
let itemId: string;

/** Creates the hot item and gives the heavy user its orders; returns the item id. */
async function prepare(target: Harness): Promise<string> {
  const id = (await target.createItem({ stock: 100_000, perUserLimit: 100_000 })).id;
  const buyer = await target.connect(heavyUser);
  await Promise.all(Array.from({ length: heavyOrders }, () => buyer.request({ type: 'buy', item: id, qty: 1 })));
  return id;
}

beforeAll(async () => {
  harness = await Harness.start({
    limits: { ...generousRates, wsBufferedBytesMax: 64 * 1024 * 1024, stockPushBufferedBytesMax: 64 * 1024 },
  });
  itemId = await prepare(harness);
});

afterAll(async () => {
  await harness?.stop();
});

async function congestedConnections(target: Harness): Promise<number> {
  const text = (await target.http('GET', '/metrics')).text;
  return Number(/^seckill_congested_connections (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

async function eventually(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a slow reader', () => {
  it('has its pushes merged, gets every reply, and slows nobody else', async () => {
    const token = await harness.token(heavyUser);
    const slow = await RawWebSocket.connect(harness.server.port, `/ws?token=${token}`);
    slow.send(JSON.stringify({ type: 'subscribe', id: 'watch', items: [itemId] }));
    await slow.until(() => slow.messages.some((message) => message.type === 'stock'));
    const watcher = await harness.connect('9002');
    await watcher.request({ type: 'subscribe', items: [itemId] });

    slow.pause();
    const requests = 150;
    for (let index = 0; index < requests; index++) slow.send(JSON.stringify({ type: 'orders', id: `list-${index}` }));
    await eventually(async () => (await congestedConnections(harness)) === 1);
    const pushesBefore = slow.messages.filter((message) => message.type === 'stock').length;

    // Meanwhile others buy and watch as usual.
    const buyer = await harness.connect('9003');
    const started = performance.now();
    for (let index = 0; index < 20; index++) {
      expect(await buyer.request({ type: 'buy', item: itemId, qty: 1 })).toMatchObject({ type: 'order' });
    }
    expect(performance.now() - started).toBeLessThan(5_000);
    const latest = (await harness.http('GET', `/items/${itemId}`)).body as { sold: number };
    await watcher.waitFor((message) => message.type === 'stock' && message.sold === latest.sold);
    const watcherPushes = watcher.stockPushes(itemId).length;

    slow.resume();
    await slow.until(
      () =>
        slow.messages.filter((message) => message.type === 'orders').length === requests &&
        slow.messages.some((message) => message.type === 'stock' && message.sold === latest.sold),
    );
    const replies = slow.messages.filter((message) => message.type === 'orders');
    expect(new Set(replies.map((reply) => reply.id)).size).toBe(requests);
    expect((replies[0]!.orders as unknown[]).length).toBe(heavyOrders);
    const pushesWhileSlow = slow.messages.filter((message) => message.type === 'stock').length - pushesBefore;
    // The watcher saw the changes one push per 50 ms; the slow reader only the merged result.
    expect(pushesWhileSlow).toBeLessThan(watcherPushes);
    expect(pushesWhileSlow).toBeLessThanOrEqual(3);
    expect(slow.messages.filter((message) => message.type === 'stock').at(-1)).toMatchObject({ sold: latest.sold });
    await eventually(async () => (await congestedConnections(harness)) === 0);
    slow.destroy();
  });

  it('is closed with 4408 past wsBufferedBytesMax, and the server goes on', async () => {
    const strict = await Harness.start({
      limits: { ...generousRates, wsBufferedBytesMax: 256 * 1024, stockPushBufferedBytesMax: 16 * 1024 },
    });
    try {
      const strictItemId = await prepare(strict);
      const token = await strict.token(heavyUser);
      const slow = await RawWebSocket.connect(strict.server.port, `/ws?token=${token}`);
      slow.pause();
      for (let index = 0; index < 200; index++) slow.send(JSON.stringify({ type: 'orders', id: `list-${index}` }));
      const other = await strict.connect('9004');
      await eventually(async () => {
        const text = (await strict.http('GET', '/metrics')).text;
        return /seckill_connections_closed_total\{reason="too_slow"\} 1/.test(text);
      });
      expect(await other.request({ type: 'buy', item: strictItemId, qty: 1 })).toMatchObject({ type: 'order' });
      slow.resume();
      await slow.ended;
      expect(slow.closeCode).toBe(4408);
      // Every reply before the close arrived whole and once; the connection ended rather than
      // dropping replies and going on.
      const replies = slow.messages.filter((message) => message.type === 'orders');
      expect(replies.length).toBeGreaterThan(0);
      expect(replies.length).toBeLessThan(200);
      expect(new Set(replies.map((reply) => reply.id)).size).toBe(replies.length);
      expect(replies.every((reply) => (reply.orders as unknown[]).length === heavyOrders)).toBe(true);
    } finally {
      await strict.stop();
    }
  });
});
