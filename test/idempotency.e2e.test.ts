/**
 * The retry key on the wire: `idempotencyKey` on `buy` and `reserve` (an addition beside
 * PROTOCOL.md, see the README). A retry with it gets the original reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './e2e/harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await Harness.start();
});

afterAll(async () => {
  await harness?.stop();
});

describe('idempotencyKey over the WebSocket', () => {
  it('answers a retried buy with the original order, on a new connection too', async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 1 });
    const first = await harness.connect('501');
    const order = await first.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey: 'basket-17' });
    expect(order).toMatchObject({ type: 'order', item: item.id, qty: 1 });
    first.close();
    const second = await harness.connect('501');
    expect(await second.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey: 'basket-17' })).toMatchObject({
      type: 'order',
      orderId: order.orderId,
    });
    expect(await second.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'rejected', reason: 'limit_exceeded' });
  });

  it('answers a retried reserve with the original reservation', async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 1 });
    const client = await harness.connect('502');
    const reserved = await client.request({ type: 'reserve', item: item.id, qty: 1, idempotencyKey: 'hold-1' });
    expect(reserved).toMatchObject({ type: 'reserved' });
    expect(await client.request({ type: 'reserve', item: item.id, qty: 1, idempotencyKey: 'hold-1' })).toMatchObject({
      type: 'reserved',
      expiresAt: reserved.expiresAt,
    });
  });

  it('after the sell-out, refuses a new key sold_out and answers the retry of an order with that order', async () => {
    const item = await harness.createItem({ stock: 1 });
    const buyer = await harness.connect('504');
    const order = await buyer.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey: 'last-one' });
    expect(order).toMatchObject({ type: 'order' });
    const crowd = await harness.connect('505');
    expect(await crowd.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey: 'too-late' })).toMatchObject({
      type: 'rejected',
      reason: 'sold_out',
    });
    expect(await buyer.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey: 'last-one' })).toMatchObject({
      type: 'order',
      orderId: order.orderId,
    });
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1, available: 0 });
  });

  it('refuses a key that is empty or longer than 64 characters as invalid', async () => {
    const item = await harness.createItem({ stock: 5 });
    const client = await harness.connect('503');
    for (const idempotencyKey of ['', 'k'.repeat(65), 42]) {
      expect(await client.request({ type: 'buy', item: item.id, qty: 1, idempotencyKey })).toMatchObject({
        type: 'rejected',
        reason: 'invalid',
      });
    }
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 0 });
  });
});
