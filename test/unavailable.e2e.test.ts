/**
 * `unavailable`, end to end: the engine reaches PostgreSQL through a TCP proxy that the test
 * cuts, as a database that stops answering. Writes are answered `unavailable` and change
 * nothing, reads from memory go on, /readyz says 503; once the database is back, the same
 * requests succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './e2e/harness.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { createTestDatabase } from './support/testDatabase.js';

let harness: Harness;
let proxy: TcpProxy;

beforeAll(async () => {
  const database = await createTestDatabase('e2e_outage');
  const target = new URL(database.url);
  proxy = await TcpProxy.start(target.hostname, Number(target.port));
  harness = await Harness.start({ databaseUrl: proxy.route(database.url) });
});

afterAll(async () => {
  proxy?.restore();
  await harness?.stop();
  await proxy?.close();
});

async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('when storage is unavailable', () => {
  it('answers unavailable, changes nothing, and recovers when the database is back', async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 1 });
    const early = await harness.connect('8001');
    expect(await early.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
    expect((await harness.http('GET', '/readyz')).status).toBe(200);

    proxy.cut();
    const unlucky = await harness.connect('8002');
    expect(await unlucky.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({
      type: 'rejected',
      reason: 'unavailable',
    });
    expect(await unlucky.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject({ reason: 'unavailable' });
    expect(await unlucky.request({ type: 'orders' })).toMatchObject({ reason: 'unavailable' });
    expect((await harness.http('GET', '/readyz')).status).toBe(503);
    // Reads from memory still answer, with the committed figures.
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 4, reserved: 0, sold: 1 });
    expect((await harness.admin('PUT', '/admin/blocklist/8003')).status).toBe(503);
    expect((await harness.admin('POST', '/admin/items', { id: harness.itemId(), name: 'x', sellerId: '7', stock: 1 })).status).toBe(503);
    expect((await harness.http('GET', '/healthz')).status).toBe(200);

    proxy.restore();
    await eventually(() => harness.http('GET', '/readyz'), (reply) => reply.status === 200);
    // Nothing was changed: the unlucky user's limit of 1 is still free, and the figures agree.
    const order = await eventually(
      () => unlucky.request({ type: 'buy', item: item.id, qty: 1 }),
      (reply) => reply.type === 'order',
    );
    expect(order).toMatchObject({ type: 'order', qty: 1 });
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 3, reserved: 0, sold: 2 });
    expect(((await unlucky.request({ type: 'orders' })).orders as unknown[]).length).toBe(1);
  });
});
