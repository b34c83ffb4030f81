/**
 * Administering a sale over HTTP: a create body with a typo is refused naming the field, the
 * item view shows every term of the sale, and items can be listed, shown in full, changed
 * (window, limit) and ended early — each change journaled, so it outlives a restart.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sliceIndexFor } from '../src/items.js';
import { Harness } from './e2e/harness.js';

let harness: Harness;
let userCounter = 7_000;
function newUser(): string {
  userCounter += 1;
  return String(userCounter);
}

beforeAll(async () => {
  harness = await Harness.start({ engine: { defaultSlices: 2 } });
});

afterAll(async () => {
  await harness?.stop();
});

async function buy(userId: string, itemId: string): Promise<Record<string, unknown>> {
  const client = await harness.connect(userId);
  return client.request({ type: 'buy', item: itemId, qty: 1 });
}

describe('creating an item', () => {
  it('refuses an unknown field with 400 naming it, and creates nothing', async () => {
    const id = harness.itemId();
    const reply = await harness.admin('POST', '/admin/items', { id, name: 'Phone', sellerId: '7', stock: 5, reserveTTL: 1_000 });
    expect(reply).toMatchObject({
      status: 400,
      body: { error: 'invalid', message: 'reserveTTL: unknown field (did you mean reserveTtlMs?)' },
    });
    expect((await harness.http('GET', `/items/${id}`)).status).toBe(404);
    const nested = await harness.admin('POST', '/admin/items', { id, name: 'Phone', sellerId: '7', stock: 5, eligibility: { level: 2 } });
    expect(nested.body).toEqual({ error: 'invalid', message: 'eligibility.level: unknown field' });
  });

  it('shows every term of the sale in the item view', async () => {
    const item = await harness.createItem({
      stock: 10,
      reserveTtlMs: 5_000,
      slices: 3,
      challenge: 'arithmetic',
      eligibility: { minLevel: 2, tags: ['member'] },
    });
    const view = (await harness.http('GET', `/items/${item.id}`)).body;
    expect(view).toMatchObject({ reserveTtlMs: 5_000, slices: 3, challenge: 'arithmetic', eligibility: { minLevel: 2, tags: ['member'] } });
    // And the defaults, where the body left them out.
    const plain = await harness.createItem({ stock: 4 });
    expect(plain).toMatchObject({ reserveTtlMs: 60_000, slices: 2, challenge: 'none', eligibility: null, perUserLimit: 1, endsAt: null });
  });
});

describe('managing items', () => {
  it('lists every item in id order, to the administrator only', async () => {
    const first = await harness.createItem();
    const second = await harness.createItem();
    const reply = await harness.admin('GET', '/admin/items');
    expect(reply.status).toBe(200);
    const ids = (reply.body as { id: string }[]).map((item) => item.id);
    expect(ids).toEqual([...ids].sort((left, right) => Number(left) - Number(right)));
    expect(ids).toEqual(expect.arrayContaining([first.id, second.id]));
    expect((await harness.http('GET', '/admin/items')).status).toBe(401);
  });

  it("shows an item's full definition with each slice's figures", async () => {
    const item = await harness.createItem({ stock: 9, slices: 3, reserveTtlMs: 7_000 });
    const reply = await harness.admin('GET', `/admin/items/${item.id}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      id: item.id,
      stock: 9,
      reserveTtlMs: 7_000,
      slices: 3,
      inTransfer: 0,
      sliceFigures: [
        { index: 0, stock: 3, available: 3, reserved: 0, sold: 0, serving: true },
        { index: 1, stock: 3, available: 3, reserved: 0, sold: 0, serving: true },
        { index: 2, stock: 3, available: 3, reserved: 0, sold: 0, serving: true },
      ],
    });
    expect(await harness.admin('GET', '/admin/items/999999')).toMatchObject({ status: 404, body: { error: 'not_found' } });
  });

  it('changes the per-user limit, refusing what it cannot be', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 1 });
    const buyer = newUser();
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'order' });
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'rejected', reason: 'limit_exceeded' });

    const changed = await harness.admin('PATCH', `/admin/items/${item.id}`, { perUserLimit: 2 });
    expect(changed).toMatchObject({ status: 200, body: { id: item.id, perUserLimit: 2, sold: 1 } });
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'order' });

    // Not below what the buyer holds now (2): nobody may hold more than the limit in force.
    expect(await harness.admin('PATCH', `/admin/items/${item.id}`, { perUserLimit: 1 })).toMatchObject({
      status: 409,
      body: { error: 'conflict', message: `a user already holds more than 1 units of item ${item.id}; the limit cannot go below that; nothing was changed` },
    });
    expect((await harness.admin('GET', `/admin/items/${item.id}`)).body).toMatchObject({ perUserLimit: 2 });
    // The other slice took the change and was put back: a buyer there may still take 2.
    let other = newUser();
    while (sliceIndexFor(other, 2) === sliceIndexFor(buyer, 2)) other = newUser();
    expect(await buy(other, item.id)).toMatchObject({ type: 'order' });
    expect(await buy(other, item.id)).toMatchObject({ type: 'order' });

    expect(await harness.admin('PATCH', `/admin/items/${item.id}`, { perUserLimit: 0 })).toMatchObject({ status: 400 });
    expect(await harness.admin('PATCH', `/admin/items/${item.id}`, { stock: 50 })).toMatchObject({
      status: 400,
      body: { error: 'invalid', message: 'stock: unknown field' },
    });
    expect(await harness.admin('PATCH', '/admin/items/999999', { perUserLimit: 2 })).toMatchObject({ status: 404 });
    expect((await harness.http('PATCH', `/admin/items/${item.id}`, { body: { perUserLimit: 5 } })).status).toBe(401);
  });

  it('moves the window: a start in the future holds the sale, an end before the start is refused', async () => {
    const item = await harness.createItem({ stock: 10 });
    const later = Date.now() + 3_600_000;
    const moved = await harness.admin('PATCH', `/admin/items/${item.id}`, { startsAt: later, endsAt: later + 60_000 });
    expect(moved).toMatchObject({ status: 200, body: { startsAt: later, endsAt: later + 60_000, status: 'not_started' } });
    expect(await buy(newUser(), item.id)).toMatchObject({ type: 'rejected', reason: 'not_started' });
    expect(await harness.admin('PATCH', `/admin/items/${item.id}`, { endsAt: later - 1 })).toMatchObject({
      status: 400,
      body: { error: 'invalid', message: `endsAt: must be after startsAt (${later})` },
    });
  });

  it('ends a sale early: nobody buys any more, and ending it again is a conflict', async () => {
    const item = await harness.createItem({ stock: 10 });
    const buyer = await harness.connect(newUser());
    const reservation = await buyer.request({ type: 'reserve', item: item.id, qty: 1 });
    expect(reservation).toMatchObject({ type: 'reserved' });

    const ended = await harness.admin('POST', `/admin/items/${item.id}/end`);
    expect(ended).toMatchObject({ status: 200, body: { id: item.id, status: 'ended' } });
    expect(await buy(newUser(), item.id)).toMatchObject({ type: 'rejected', reason: 'ended' });
    // A reservation made before the end may still be confirmed: it was promised.
    expect(await buyer.request({ type: 'confirm', token: reservation.token })).toMatchObject({ type: 'order' });
    expect(await harness.admin('POST', `/admin/items/${item.id}/end`)).toMatchObject({ status: 409, body: { error: 'conflict' } });

    const notYet = await harness.createItem({ startsAt: Date.now() + 3_600_000 });
    expect(await harness.admin('POST', `/admin/items/${notYet.id}/end`)).toMatchObject({ status: 409 });
  });

  it('journals every change in every slice, so the changes outlive a restart', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 1 });
    expect((await harness.admin('PATCH', `/admin/items/${item.id}`, { perUserLimit: 3 })).status).toBe(200);
    expect((await harness.admin('POST', `/admin/items/${item.id}/end`)).status).toBe(200);
    const before = (await harness.admin('GET', `/admin/items/${item.id}`)).body as { endsAt: number };

    const client = new pg.Client({ connectionString: harness.databaseUrl });
    await client.connect();
    try {
      const journaled = await client.query<{ detail: { perUserLimit: number; endsAt: number | null } }>(
        `SELECT journal.detail FROM seckill.journal
           JOIN seckill.item_inventory slice ON slice.id = journal.slice_id
          WHERE slice.item_id = $1 AND journal.kind = 'amended' ORDER BY journal.sequence, journal.slice_id`,
        [item.id],
      );
      // Two changes, each in both slices.
      expect(journaled.rows.map((row) => row.detail)).toEqual([
        { perUserLimit: 3, startsAt: item.startsAt, endsAt: null },
        { perUserLimit: 3, startsAt: item.startsAt, endsAt: null },
        { perUserLimit: 3, startsAt: item.startsAt, endsAt: before.endsAt },
        { perUserLimit: 3, startsAt: item.startsAt, endsAt: before.endsAt },
      ]);
    } finally {
      await client.end();
    }

    await harness.restart();
    expect((await harness.admin('GET', `/admin/items/${item.id}`)).body).toMatchObject({
      perUserLimit: 3,
      endsAt: before.endsAt,
      status: 'ended',
    });
    expect(await buy(newUser(), item.id)).toMatchObject({ type: 'rejected', reason: 'ended' });
  });

  it('brings every slice in line with the catalog at start, for a change a slice missed', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 1 });
    const buyer = newUser();
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'order' });
    // As if a change had been stored in the catalog and the engine stopped before the slices took it.
    const client = new pg.Client({ connectionString: harness.databaseUrl });
    await client.connect();
    try {
      await client.query('UPDATE seckill.sale_item SET per_user_limit = 2 WHERE id = $1', [item.id]);
    } finally {
      await client.end();
    }
    await harness.restart();
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'order' });
    expect(await buy(buyer, item.id)).toMatchObject({ type: 'rejected', reason: 'limit_exceeded' });
  });
});

describe('reconciliation', () => {
  it('lists the cancelled reservations and cancelled orders of an item over a time range, from its journals', async () => {
    const item = await harness.createItem({ stock: 10 });
    const before = Date.now();
    const holder = newUser();
    const client = await harness.connect(holder);
    const reserved = await client.request({ type: 'reserve', item: item.id, qty: 1 });
    expect(reserved).toMatchObject({ type: 'reserved' });
    expect(await client.request({ type: 'cancel', token: reserved.token })).toMatchObject({ type: 'released' });
    const buyer = newUser();
    const order = await buy(buyer, item.id);
    expect(order).toMatchObject({ type: 'order' });
    expect((await harness.admin('POST', `/admin/orders/${order.orderId as string}/cancel`)).status).toBe(200);

    const reply = await harness.admin('GET', `/admin/items/${item.id}/reconciliation?from=${new Date(before).toISOString()}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      itemId: item.id,
      fromMs: before,
      expiredReservations: [],
      cancelledReservations: [{ userId: holder, quantity: 1 }],
      cancelledOrders: [{ userId: buyer, quantity: 1, id: order.orderId }],
    });
    // Nothing in a range that ended before the sale.
    const earlier = await harness.admin('GET', `/admin/items/${item.id}/reconciliation?to=${before - 60_000}`);
    expect(earlier.body).toMatchObject({ cancelledReservations: [], cancelledOrders: [] });
    expect(await harness.admin('GET', `/admin/items/${item.id}/reconciliation?from=yesterday`)).toMatchObject({ status: 400, body: { error: 'invalid' } });
    expect(await harness.admin('GET', '/admin/items/999999/reconciliation')).toMatchObject({ status: 404 });
    expect((await harness.http('GET', `/admin/items/${item.id}/reconciliation`)).status).toBe(401);
  });
});
