/**
 * Idempotent retries: a `buy` or `reserve` retried with the client's key by the same user gets
 * what the first one came to, never a second order or `limit_exceeded`.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;
let nextItemId = 2_000;

beforeAll(async () => {
  database = await createTestDatabase('idempotency');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

async function openEngine() {
  const engine = await createEngine({ databaseUrl: database.url });
  onTestFinished(() => engine.close());
  return engine;
}

describe('a buy retried with its idempotency key', () => {
  it('returns the original order, never a second one or limit_exceeded, also after a restart and once sold out', async () => {
    let engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Mug', sellerId: '7', stock: 2, perUserLimit: 1 });
    const buyer = { userId: '31' };
    const original = await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'order-1' });
    if (!original.ok) throw new Error(`buy failed: ${original.reason}`);

    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'order-1' })).toEqual(original);
    // A new key is a new request: this one passes the limit.
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'order-2' })).toMatchObject({ reason: 'limit_exceeded' });
    // Another buyer takes the last unit: the item is sold out, and the retry still gets its order.
    expect(await engine.buy({ userId: '32' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    expect(engine.item(itemId)!.status).toBe('sold_out');
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'order-1' })).toEqual(original);

    await engine.close();
    engine = await openEngine();
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'order-1' })).toEqual(original);
    expect((await engine.orders(buyer.userId)).map((order) => order.orderId)).toEqual([original.orderId]);
    expect((await storedOrderIds(admin, itemId)).length).toBe(2);
  });

  it('sent many times at once, makes one order and answers every copy with it', async () => {
    const engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Jug', sellerId: '7', stock: 100, perUserLimit: 5 });
    const buyer = { userId: '33' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => engine.buy(buyer, { itemId, quantity: 2, idempotencyKey: 'once' })),
    );
    const orderIds = new Set(answers.map((answer) => (answer.ok ? answer.orderId : answer.reason)));
    expect(orderIds.size).toBe(1);
    expect(answers[0]).toMatchObject({ ok: true, quantity: 2 });
    expect(engine.item(itemId)).toMatchObject({ sold: 2 });
  });

  it('naming a different request is refused as invalid, and changes nothing', async () => {
    const engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Pot', sellerId: '7', stock: 10, perUserLimit: 5 });
    const buyer = { userId: '34' };
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'k' })).toMatchObject({ ok: true });
    expect(await engine.buy(buyer, { itemId, quantity: 2, idempotencyKey: 'k' })).toMatchObject({ reason: 'invalid' });
    expect(await engine.reserve(buyer, { itemId, quantity: 1, idempotencyKey: 'k' })).toMatchObject({ reason: 'invalid' });
    // Keys belong to their user: another user's same key is another request.
    expect(await engine.buy({ userId: '35' }, { itemId, quantity: 1, idempotencyKey: 'k' })).toMatchObject({ ok: true });
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'x'.repeat(65) })).toMatchObject({ reason: 'invalid' });
    expect(engine.item(itemId)).toMatchObject({ sold: 2 });
  });
});

describe('a keyed buy on a sold-out item', () => {
  it('is refused from memory when its key is new to the slice, and goes on to the slice when the key names an order', async () => {
    const engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Bowl', sellerId: '7', stock: 1 });
    const buyer = { userId: '41' };
    const original = await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'bowl-1' });
    if (!original.ok) throw new Error(`buy failed: ${original.reason}`);
    expect(engine.item(itemId)!.status).toBe('sold_out');

    // The crowd after the sell-out, with keys as the client library sends them: answered at once.
    expect(engine.refusalFromMemory({ userId: '42' }, { itemId, quantity: 1, idempotencyKey: 'bowl-2' })).toMatchObject({ reason: 'sold_out' });
    expect(await engine.buy({ userId: '42' }, { itemId, quantity: 1, idempotencyKey: 'bowl-2' })).toMatchObject({ reason: 'sold_out' });
    // A new key of the buyer who got the order is a new request, refused the same way.
    expect(engine.refusalFromMemory(buyer, { itemId, quantity: 1, idempotencyKey: 'bowl-3' })).toMatchObject({ reason: 'sold_out' });
    // The retry of the order is not refused: its slice answers it with the order.
    expect(engine.refusalFromMemory(buyer, { itemId, quantity: 1, idempotencyKey: 'bowl-1' })).toBeNull();
    expect(await engine.buy(buyer, { itemId, quantity: 1, idempotencyKey: 'bowl-1' })).toEqual(original);
  });

  it('is refused from memory whatever else waits in its slice, and goes on to the slice on an item of several slices', async () => {
    const engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Cup', sellerId: '7', stock: 1 });
    expect(await engine.buy({ userId: '43' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    // A restock is on its way to the slice, submitted and not yet decided: a new key still gets
    // the refusal the slice itself would give it (the one routed with), until the restock commits.
    const restocked = engine.restock(itemId, 1);
    expect(engine.refusalFromMemory({ userId: '44' }, { itemId, quantity: 1, idempotencyKey: 'cup-1' })).toMatchObject({ reason: 'sold_out' });
    expect(await engine.buy({ userId: '44' }, { itemId, quantity: 1, idempotencyKey: 'cup-1' })).toMatchObject({ reason: 'sold_out' });
    expect(await restocked).toMatchObject({ ok: true });
    expect(engine.refusalFromMemory({ userId: '44' }, { itemId, quantity: 1, idempotencyKey: 'cup-2' })).toBeNull();
    expect(await engine.buy({ userId: '44' }, { itemId, quantity: 1, idempotencyKey: 'cup-2' })).toMatchObject({ ok: true });

    const sliced = String(nextItemId++);
    await engine.createItem({ id: sliced, name: 'Saucer', sellerId: '7', stock: 2, slices: 2 });
    await Promise.all([engine.buy({ userId: '45' }, { itemId: sliced, quantity: 1 }), engine.buy({ userId: '46' }, { itemId: sliced, quantity: 1 })]);
    expect(engine.item(sliced)!.status).toBe('sold_out');
    expect(engine.refusalFromMemory({ userId: '47' }, { itemId: sliced, quantity: 1 })).toMatchObject({ reason: 'sold_out' });
    // With siblings, a slice's sold_out sends the request looking for stock: it goes on.
    expect(engine.refusalFromMemory({ userId: '47' }, { itemId: sliced, quantity: 1, idempotencyKey: 'saucer-1' })).toBeNull();
    expect(await engine.buy({ userId: '47' }, { itemId: sliced, quantity: 1, idempotencyKey: 'saucer-1' })).toMatchObject({ reason: 'sold_out' });
  });
});

describe('a reserve retried with its idempotency key', () => {
  it('returns the original reservation while it stands, and a new one once it was cancelled', async () => {
    const engine = await openEngine();
    const itemId = String(nextItemId++);
    await engine.createItem({ id: itemId, name: 'Tin', sellerId: '7', stock: 10, perUserLimit: 1 });
    const buyer = { userId: '36' };
    const original = await engine.reserve(buyer, { itemId, quantity: 1, idempotencyKey: 'hold' });
    if (!original.ok) throw new Error(`reserve failed: ${original.reason}`);
    const retried = await engine.reserve(buyer, { itemId, quantity: 1, idempotencyKey: 'hold' });
    expect(retried).toMatchObject({ ok: true, expiresAt: original.expiresAt, quantity: 1 });
    expect(engine.item(itemId)).toMatchObject({ reserved: 1 });
    // Either token names the one reservation: it confirms once.
    if (!retried.ok) throw new Error('retry failed');
    expect(await engine.confirm(buyer, retried.token)).toMatchObject({ ok: true });
    expect(await engine.confirm(buyer, original.token)).toMatchObject({ reason: 'token_used' });
    // Confirmed, the reservation stands as an order: a retry still gets it back.
    expect(await engine.reserve(buyer, { itemId, quantity: 1, idempotencyKey: 'hold' })).toMatchObject({
      ok: true,
      expiresAt: original.expiresAt,
    });

    const other = { userId: '37' };
    const held = await engine.reserve(other, { itemId, quantity: 1, idempotencyKey: 'hold' });
    if (!held.ok) throw new Error('reserve failed');
    expect(await engine.cancel(other, held.token)).toMatchObject({ ok: true });
    const again = await engine.reserve(other, { itemId, quantity: 1, idempotencyKey: 'hold' });
    expect(again).toMatchObject({ ok: true });
    expect(again.ok && again.token !== held.token).toBe(true);
  });
});
