/**
 * The time-driven parts of the contract, end to end, with a simulated clock injected into the
 * engine and the server, so nothing waits for real time to pass: reservation TTLs
 * (token_expired), challenge expiry, the JWT's `exp` on an open connection, the rate limits'
 * refill, and the 50 ms coalescing of stock pushes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../src/clock.js';
import { Harness, solve } from './e2e/harness.js';

const clock = new SimulatedClock(Date.UTC(2026, 0, 1));
let harness: Harness;
let userCounter = 7_000;
function newUser(): string {
  userCounter += 1;
  return String(userCounter);
}

beforeAll(async () => {
  harness = await Harness.start({
    clock,
    limits: { challengeTtlMs: 5_000, connectionRequestsPerSecond: 1, connectionBurstRequests: 20 },
  });
});

afterAll(async () => {
  await harness?.stop();
});

describe('with a simulated clock', () => {
  it('answers token_expired once the reservation TTL ran out, and puts the stock back on sale', async () => {
    const item = await harness.createItem({ stock: 1, reserveTtlMs: 1_000 });
    const holder = await harness.connect(newUser());
    const watcher = await harness.connect(newUser());
    await watcher.request({ type: 'subscribe', items: [item.id] });
    const reserved = await holder.request({ type: 'reserve', item: item.id, qty: 1 });
    expect(reserved).toMatchObject({ type: 'reserved', expiresAt: clock.now() + 1_000 });
    // The watcher was sent the figures on subscribe at this very moment; the next push waits 50 ms.
    clock.advance(50);
    await watcher.waitFor((message) => message.type === 'stock' && message.reserved === 1);

    clock.advance(950);
    // The expiry is journaled; the watcher sees the unit back on sale.
    expect(await watcher.waitFor((message) => message.type === 'stock' && message.reserved === 0)).toMatchObject({
      available: 1,
      sold: 0,
      status: 'on_sale',
    });
    expect(await holder.request({ type: 'confirm', token: reserved.token })).toMatchObject({
      type: 'rejected',
      reason: 'token_expired',
    });
    expect(await holder.request({ type: 'cancel', token: reserved.token })).toMatchObject({ reason: 'token_expired' });
    const other = await harness.connect(newUser());
    expect(await other.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
  });

  it('answers token_expired for a confirm that comes after the TTL, before the expiry timer ran', async () => {
    const item = await harness.createItem({ stock: 1, reserveTtlMs: 2_000 });
    const holder = await harness.connect(newUser());
    const reserved = await holder.request({ type: 'reserve', item: item.id, qty: 1 });
    clock.advance(1_999);
    const early = await holder.request({ type: 'reserve', item: item.id, qty: 1 });
    expect(early).toMatchObject({ type: 'rejected' });
    clock.advance(1);
    expect(await holder.request({ type: 'confirm', token: reserved.token })).toMatchObject({ reason: 'token_expired' });
  });

  it('answers bad_answer for a challenge answered after it expired', async () => {
    const item = await harness.createItem({ challenge: 'arithmetic' });
    const client = await harness.connect(newUser());
    const asked = await client.request({ type: 'challenge', item: item.id });
    expect(asked.expiresAt).toBe(clock.now() + 5_000);
    clock.advance(5_000);
    expect(
      await client.request({ type: 'buy', item: item.id, qty: 1, challengeId: asked.challengeId, answer: solve(String(asked.prompt)) }),
    ).toMatchObject({ type: 'rejected', reason: 'bad_answer' });
    const fresh = await client.request({ type: 'challenge', item: item.id });
    clock.advance(4_999);
    expect(
      await client.request({ type: 'buy', item: item.id, qty: 1, challengeId: fresh.challengeId, answer: solve(String(fresh.prompt)) }),
    ).toMatchObject({ type: 'order' });
  });

  it("closes a connection with 4401 once the user's JWT expired", async () => {
    const client = await harness.connect(newUser(), { exp: Math.floor(clock.now() / 1000) + 60 });
    expect(await client.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
    clock.advance(60_000);
    client.send({ type: 'orders', id: 'late' });
    expect(await client.closed).toEqual({ code: 4401, reason: 'token expired' });
  });

  it('refills the rate limit with time', async () => {
    const client = await harness.connect(newUser());
    const burst = await Promise.all(Array.from({ length: 21 }, () => client.request({ type: 'challenge', item: '1' })));
    expect(burst.filter((reply) => reply.reason === 'rate_limited')).toHaveLength(1);
    expect(await client.request({ type: 'challenge', item: '1' })).toMatchObject({ reason: 'rate_limited' });
    clock.advance(1_000);
    expect(await client.request({ type: 'challenge', item: '1' })).toMatchObject({ reason: 'unknown_item' });
    expect(await client.request({ type: 'challenge', item: '1' })).toMatchObject({ reason: 'rate_limited' });
  });

  it('pushes the status when the sale starts and when it ends', async () => {
    const item = await harness.createItem({ startsAt: clock.now() + 10_000, endsAt: clock.now() + 20_000 });
    const client = await harness.connect(newUser());
    await client.request({ type: 'subscribe', items: [item.id] });
    expect(await client.waitFor((message) => message.type === 'stock')).toMatchObject({ status: 'not_started' });
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ reason: 'not_started' });
    clock.advance(10_000);
    expect(await client.waitFor((message) => message.type === 'stock' && message.status === 'on_sale')).toMatchObject({
      available: 10,
    });
    clock.advance(10_000);
    expect(await client.waitFor((message) => message.type === 'stock' && message.status === 'ended')).toMatchObject({
      available: 10,
    });
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ reason: 'ended' });
  });

  it("pushes the status at a sale window's new bounds once an administrator moved them", async () => {
    const item = await harness.createItem({ startsAt: clock.now() + 10_000 });
    const client = await harness.connect(newUser());
    await client.request({ type: 'subscribe', items: [item.id] });
    expect(await client.waitFor((message) => message.type === 'stock')).toMatchObject({ status: 'not_started' });
    // Brought forward, and given an end it did not have.
    const startsAt = clock.now() + 5_000;
    expect(await harness.admin('PATCH', `/admin/items/${item.id}`, { startsAt, endsAt: startsAt + 5_000 })).toMatchObject({ status: 200 });
    clock.advance(5_000);
    expect(await client.waitFor((message) => message.type === 'stock' && message.status === 'on_sale')).toMatchObject({ available: 10 });
    clock.advance(5_000);
    expect(await client.waitFor((message) => message.type === 'stock' && message.status === 'ended')).toMatchObject({ available: 10 });
  });

  it('pushes ended to the watchers of a sale an administrator ended', async () => {
    const item = await harness.createItem({ stock: 10 });
    const client = await harness.connect(newUser());
    await client.request({ type: 'subscribe', items: [item.id] });
    expect(await client.waitFor((message) => message.type === 'stock')).toMatchObject({ status: 'on_sale' });
    clock.advance(100);
    expect(await harness.admin('POST', `/admin/items/${item.id}/end`)).toMatchObject({ status: 200 });
    // Pushes are coalesced to one per 50 ms: the slices' own change may have taken this instant's.
    clock.advance(50);
    expect(await client.waitFor((message) => message.type === 'stock' && message.status === 'ended')).toMatchObject({ available: 10 });
  });

  it('coalesces stock pushes: nothing new until 50 ms after the last push, then only the latest', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 5 });
    const watcher = await harness.connect(newUser());
    await watcher.request({ type: 'subscribe', items: [item.id] });
    await watcher.waitFor((message) => message.type === 'stock');
    clock.advance(100);
    const buyer = await harness.connect(newUser());
    await buyer.request({ type: 'buy', item: item.id, qty: 1 });
    // The topic has been quiet for over 50 ms, so the first change is pushed at once.
    await watcher.waitFor((message) => message.type === 'stock' && message.sold === 1);
    await buyer.request({ type: 'buy', item: item.id, qty: 1 });
    await buyer.request({ type: 'buy', item: item.id, qty: 1 });
    // A round trip on the watcher's own connection: the server has seen both changes by now.
    await watcher.request({ type: 'orders' });
    expect(watcher.stockPushes(item.id).map((push) => push.sold)).toEqual([0, 1]);
    clock.advance(49);
    await watcher.request({ type: 'orders' });
    expect(watcher.stockPushes(item.id).map((push) => push.sold)).toEqual([0, 1]);
    clock.advance(1);
    await watcher.waitFor((message) => message.type === 'stock' && message.sold === 3);
    expect(watcher.stockPushes(item.id).map((push) => push.sold)).toEqual([0, 1, 3]);
  });
});
