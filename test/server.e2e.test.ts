/**
 * The wire contract (shared/PROTOCOL.md) end to end: the real server on the real engine and
 * PostgreSQL, over a real WebSocket (the `ws` package as the client) and HTTP (fetch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, UpgradeRefused, type Message } from './e2e/client.js';
import { Harness, adminToken, solve } from './e2e/harness.js';
import { RawWebSocket } from './e2e/rawClient.js';

let harness: Harness;
let userCounter = 5_000;
/** A user id nobody else in this file uses. */
function newUser(): string {
  userCounter += 1;
  return String(userCounter);
}

beforeAll(async () => {
  harness = await Harness.start();
});

afterAll(async () => {
  await harness?.stop();
});

function rejection(reason: string): Partial<Message> {
  return { type: 'rejected', reason };
}

describe('subscribe, unsubscribe and stock pushes', () => {
  it('answers subscribed, then pushes the current figures at once', async () => {
    const item = await harness.createItem({ stock: 7 });
    const client = await harness.connect(newUser());
    const reply = await client.request({ type: 'subscribe', id: 'watch-1', items: [item.id] });
    expect(reply).toEqual({ type: 'subscribed', id: 'watch-1', items: [item.id] });
    const push = await client.waitFor((message) => message.type === 'stock');
    expect(client.messages.indexOf(reply)).toBeLessThan(client.messages.indexOf(push));
    expect(push).toMatchObject({ type: 'stock', item: item.id, available: 7, reserved: 0, sold: 0, status: 'on_sale' });
    expect(push).not.toHaveProperty('id');
  });

  it('pushes changes, coalesced to one per 50 ms, ending on the latest figures, never reordered', async () => {
    const item = await harness.createItem({ stock: 100 });
    const watcher = await harness.connect(newUser());
    await watcher.request({ type: 'subscribe', items: [item.id] });
    await watcher.waitFor((message) => message.type === 'stock');
    const buyers = await Promise.all(Array.from({ length: 30 }, () => harness.connect(newUser())));
    const started = performance.now();
    const orders = await Promise.all(buyers.map((buyer) => buyer.request({ type: 'buy', item: item.id, qty: 1 })));
    expect(orders.every((order) => order.type === 'order')).toBe(true);
    const last = await watcher.waitFor((message) => message.type === 'stock' && message.sold === 30);
    const elapsed = performance.now() - started;
    const pushes = watcher.stockPushes(item.id).slice(1);
    // At most one push per 50 ms (plus the first, which may go at once, and timer slack).
    expect(pushes.length).toBeLessThanOrEqual(Math.floor(elapsed / 50) + 2);
    const sold = pushes.map((push) => push.sold as number);
    expect([...sold].sort((left, right) => left - right)).toEqual(sold);
    expect(last).toMatchObject({ available: 70, reserved: 0, sold: 30, status: 'on_sale' });
    const view = await harness.http('GET', `/items/${item.id}`);
    expect(view.body).toMatchObject({ available: 70, sold: 30 });
  });

  it('stops pushing an item after unsubscribed', async () => {
    const item = await harness.createItem({ stock: 5 });
    const leaver = await harness.connect(newUser());
    const sentinel = await harness.connect(newUser());
    for (const client of [leaver, sentinel]) {
      await client.request({ type: 'subscribe', items: [item.id] });
      await client.waitFor((message) => message.type === 'stock');
    }
    const reply = await leaver.request({ type: 'unsubscribe', id: 'leave', items: [item.id] });
    expect(reply).toEqual({ type: 'unsubscribed', id: 'leave', items: [item.id] });
    const before = leaver.stockPushes(item.id).length;
    const buyer = await harness.connect(newUser());
    expect(await buyer.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
    // The sentinel is on the same topic; once it has the new figures, so would the leaver.
    await sentinel.waitFor((message) => message.type === 'stock' && message.sold === 1);
    await buyer.request({ type: 'orders' });
    expect(leaver.stockPushes(item.id).length).toBe(before);
  });

  it('refuses to subscribe to an unknown item and subscribes to nothing', async () => {
    const item = await harness.createItem();
    const client = await harness.connect(newUser());
    const reply = await client.request({ type: 'subscribe', items: [item.id, '999999999'] });
    expect(reply).toMatchObject(rejection('unknown_item'));
    expect(client.stockPushes()).toHaveLength(0);
  });
});

describe('buying', () => {
  it('buys: an order after commit, listed by orders and GET /orders, newest first', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 3 });
    const user = newUser();
    const client = await harness.connect(user);
    const first = await client.request({ type: 'buy', id: 'buy-1', item: item.id, qty: 2 });
    expect(first).toMatchObject({ type: 'order', id: 'buy-1', item: item.id, qty: 2 });
    expect(first.orderId).toMatch(/^[1-9][0-9]*$/);
    const second = await client.request({ type: 'buy', item: item.id, qty: 1 });
    const listed = await client.request({ type: 'orders', id: 'mine' });
    expect(listed).toMatchObject({ type: 'orders', id: 'mine' });
    const orders = listed.orders as Record<string, unknown>[];
    expect(orders.map((order) => order.orderId)).toEqual([second.orderId, first.orderId]);
    expect(orders[1]).toMatchObject({ itemId: item.id, userId: user, sellerId: '7', qty: 2, status: 'confirmed' });
    expect(typeof orders[1]!.createdAt).toBe('number');
    const http = await harness.http('GET', '/orders', { token: await harness.token(user) });
    expect(http.status).toBe(200);
    expect(http.body).toEqual(orders);
  });

  // The server reads plain purchase frames itself and leaves the rest to JSON.parse
  // (src/edge/purchaseFrame.ts): however a client writes the same request, it gets the same answer.
  it.each([
    ['as the benchmarks write it', (item: string) => `{"type":"buy","id":"p","item":"${item}","qty":2}`],
    ['in the client library\'s order, with a key', (item: string) => `{"type":"buy","item":"${item}","qty":2,"idempotencyKey":"k-${item}-1","id":"p"}`],
    ['with whitespace', (item: string) => `{ "type": "buy", "id": "p", "item": "${item}", "qty": 2 }`],
    ['with an escaped id', (item: string) => `{"type":"buy","id":"\\u0070","item":"${item}","qty":2}`],
    ['with qty written 2.0', (item: string) => `{"type":"buy","id":"p","item":"${item}","qty":2.0}`],
    ['with a field the protocol does not know', (item: string) => `{"type":"buy","id":"p","item":"${item}","qty":2,"note":"x"}`],
    ['with a repeated field', (item: string) => `{"type":"buy","id":"p","item":"${item}","qty":5,"qty":2}`],
  ])('answers a buy written %s with the same order', async (_name, write) => {
    const item = await harness.createItem({ stock: 3, perUserLimit: 2 });
    const client = await harness.connect(newUser());
    const from = client.messages.length;
    client.send(write(item.id));
    expect(await client.waitFor((message) => message.id === 'p', from)).toMatchObject({ type: 'order', id: 'p', item: item.id, qty: 2 });
    // And the item's figures moved by exactly that order; a second one is past the user's limit.
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('limit_exceeded'));
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 1, sold: 2 });
  });

  it('reserves and confirms; a second confirm or a cancel afterwards is token_used', async () => {
    const item = await harness.createItem({ stock: 3 });
    const client = await harness.connect(newUser());
    const reserved = await client.request({ type: 'reserve', id: 'hold', item: item.id, qty: 1 });
    expect(reserved).toMatchObject({ type: 'reserved', id: 'hold', item: item.id, qty: 1 });
    expect(typeof reserved.token).toBe('string');
    expect(reserved.expiresAt as number).toBeGreaterThan(Date.now());
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 2, reserved: 1, sold: 0 });
    const order = await client.request({ type: 'confirm', id: 'pay', token: reserved.token });
    expect(order).toMatchObject({ type: 'order', id: 'pay', item: item.id, qty: 1 });
    expect(await client.request({ type: 'confirm', token: reserved.token })).toMatchObject(rejection('token_used'));
    expect(await client.request({ type: 'cancel', token: reserved.token })).toMatchObject(rejection('token_used'));
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 2, reserved: 0, sold: 1 });
  });

  it('reserves and cancels: released, and the stock is back on sale', async () => {
    const item = await harness.createItem({ stock: 1 });
    const client = await harness.connect(newUser());
    const reserved = await client.request({ type: 'reserve', item: item.id, qty: 1 });
    const other = await harness.connect(newUser());
    expect(await other.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('sold_out'));
    const released = await client.request({ type: 'cancel', id: 'undo', token: reserved.token });
    expect(released).toEqual({ type: 'released', id: 'undo', item: item.id, qty: 1 });
    expect(await other.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
  });

  it('answers token_invalid for a token it did not issue to this user', async () => {
    const item = await harness.createItem();
    const owner = await harness.connect(newUser());
    const thief = await harness.connect(newUser());
    const reserved = await owner.request({ type: 'reserve', item: item.id, qty: 1 });
    expect(await thief.request({ type: 'confirm', token: reserved.token })).toMatchObject(rejection('token_invalid'));
    expect(await thief.request({ type: 'cancel', token: reserved.token })).toMatchObject(rejection('token_invalid'));
    expect(await owner.request({ type: 'confirm', token: 'not-a-token' })).toMatchObject(rejection('token_invalid'));
    const forged = `${String(reserved.token).slice(0, -4)}AAAA`;
    expect(await owner.request({ type: 'confirm', token: forged })).toMatchObject(rejection('token_invalid'));
    expect(await owner.request({ type: 'confirm', token: reserved.token })).toMatchObject({ type: 'order' });
  });
});

describe('rejection reasons', () => {
  it('sold_out, from memory, for as long as nothing is available', async () => {
    const item = await harness.createItem({ stock: 1 });
    const winner = await harness.connect(newUser());
    expect(await winner.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
    const flushesBefore = await flushCount();
    const losers = await Promise.all(Array.from({ length: 5 }, () => harness.connect(newUser())));
    for (const loser of losers) {
      expect(await loser.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('sold_out'));
      expect(await loser.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject(rejection('sold_out'));
    }
    // Nothing reached the journal: the answers came from memory.
    expect(await flushCount()).toBe(flushesBefore);
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ status: 'sold_out', available: 0 });
  });

  it('sold_out when fewer units are left than asked for', async () => {
    const item = await harness.createItem({ stock: 2, perUserLimit: 5 });
    const client = await harness.connect(newUser());
    expect(await client.request({ type: 'buy', item: item.id, qty: 3 })).toMatchObject(rejection('sold_out'));
  });

  it('limit_exceeded past perUserLimit, counting reserved and confirmed', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 2 });
    const client = await harness.connect(newUser());
    expect(await client.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject({ type: 'reserved' });
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('limit_exceeded'));
    expect(await client.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject(rejection('limit_exceeded'));
  });

  it('not_started and ended outside the sale window', async () => {
    const later = await harness.createItem({ startsAt: Date.now() + 3_600_000 });
    const over = await harness.createItem({ startsAt: Date.now() - 7_200_000, endsAt: Date.now() - 3_600_000 });
    const client = await harness.connect(newUser());
    expect(await client.request({ type: 'buy', item: later.id, qty: 1 })).toMatchObject(rejection('not_started'));
    expect(await client.request({ type: 'reserve', item: later.id, qty: 1 })).toMatchObject(rejection('not_started'));
    expect(await client.request({ type: 'buy', item: over.id, qty: 1 })).toMatchObject(rejection('ended'));
    expect(await client.request({ type: 'reserve', item: over.id, qty: 1 })).toMatchObject(rejection('ended'));
  });

  it('unknown_item for an item that does not exist', async () => {
    const client = await harness.connect(newUser());
    for (const type of ['buy', 'reserve']) {
      expect(await client.request({ type, item: '424242424242', qty: 1 })).toMatchObject(rejection('unknown_item'));
    }
    expect(await client.request({ type: 'challenge', item: '424242424242' })).toMatchObject(rejection('unknown_item'));
  });

  it('not_eligible when the token lacks the level or a tag', async () => {
    const item = await harness.createItem({ eligibility: { minLevel: 2, tags: ['member', 'verified'] } });
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'not_eligible'],
      [{ level: 1, tags: ['member', 'verified'] }, 'not_eligible'],
      [{ level: 3, tags: ['member'] }, 'not_eligible'],
      [{ level: 2, tags: ['verified', 'member', 'extra'] }, 'order'],
    ];
    for (const [claims, outcome] of cases) {
      const client = await harness.connect(newUser(), claims);
      const reply = await client.request({ type: 'buy', item: item.id, qty: 1 });
      if (outcome === 'order') expect(reply).toMatchObject({ type: 'order' });
      else expect(reply).toMatchObject(rejection(outcome));
    }
  });

  it('blocked while on the blocklist, which the admin routes change', async () => {
    const item = await harness.createItem();
    const user = newUser();
    const client = await harness.connect(user);
    expect((await harness.admin('PUT', `/admin/blocklist/${user}`)).status).toBe(200);
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('blocked'));
    expect(await client.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject(rejection('blocked'));
    expect((await harness.admin('DELETE', `/admin/blocklist/${user}`)).status).toBe(200);
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
  });
});

describe('the challenge filter', () => {
  it('asks a question per request, checks the answer once, and never sends the answer', async () => {
    const item = await harness.createItem({ challenge: 'arithmetic', stock: 10, perUserLimit: 5 });
    const user = newUser();
    const client = await harness.connect(user);
    expect(await client.request({ type: 'reserve', item: item.id, qty: 1 })).toMatchObject(rejection('challenge_required'));
    expect(await client.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('challenge_required'));

    const question = await client.request({ type: 'challenge', id: 'q1', item: item.id });
    expect(Object.keys(question).sort()).toEqual(['challengeId', 'expiresAt', 'id', 'item', 'prompt', 'type']);
    expect(question).toMatchObject({ type: 'challenge', id: 'q1', item: item.id });
    const answer = solve(String(question.prompt));
    const bought = await client.request({ type: 'buy', item: item.id, qty: 1, challengeId: question.challengeId, answer });
    expect(bought).toMatchObject({ type: 'order' });
    // Single use: the same challenge and answer again.
    expect(
      await client.request({ type: 'buy', item: item.id, qty: 1, challengeId: question.challengeId, answer }),
    ).toMatchObject(rejection('bad_answer'));

    const wrong = await client.request({ type: 'challenge', item: item.id });
    expect(
      await client.request({ type: 'reserve', item: item.id, qty: 1, challengeId: wrong.challengeId, answer: solve(String(wrong.prompt)) + 1 }),
    ).toMatchObject(rejection('bad_answer'));
    // A wrong answer uses the challenge up too, so it cannot be guessed at.
    expect(
      await client.request({ type: 'reserve', item: item.id, qty: 1, challengeId: wrong.challengeId, answer: solve(String(wrong.prompt)) }),
    ).toMatchObject(rejection('bad_answer'));
    expect(
      await client.request({ type: 'reserve', item: item.id, qty: 1, challengeId: 'no-such-challenge', answer: 3 }),
    ).toMatchObject(rejection('bad_answer'));

    // The answer may come as a decimal string, and reserve takes it as buy does.
    const again = await client.request({ type: 'challenge', item: item.id });
    expect(
      await client.request({ type: 'reserve', item: item.id, qty: 1, challengeId: again.challengeId, answer: String(solve(String(again.prompt))) }),
    ).toMatchObject({ type: 'reserved' });
  });

  it('binds a challenge to its user and its item', async () => {
    const item = await harness.createItem({ challenge: 'arithmetic' });
    const other = await harness.createItem({ challenge: 'arithmetic' });
    const alice = await harness.connect(newUser());
    const bob = await harness.connect(newUser());
    const asked = await alice.request({ type: 'challenge', item: item.id });
    const answer = solve(String(asked.prompt));
    expect(await bob.request({ type: 'buy', item: item.id, qty: 1, challengeId: asked.challengeId, answer })).toMatchObject(
      rejection('bad_answer'),
    );
    const asked2 = await alice.request({ type: 'challenge', item: item.id });
    expect(
      await alice.request({ type: 'buy', item: other.id, qty: 1, challengeId: asked2.challengeId, answer: solve(String(asked2.prompt)) }),
    ).toMatchObject(rejection('bad_answer'));
  });

  it('lets a sold-out challenge item answer sold_out without a question', async () => {
    const item = await harness.createItem({ challenge: 'arithmetic', stock: 1 });
    const winner = await harness.connect(newUser());
    const asked = await winner.request({ type: 'challenge', item: item.id });
    expect(
      await winner.request({ type: 'buy', item: item.id, qty: 1, challengeId: asked.challengeId, answer: solve(String(asked.prompt)) }),
    ).toMatchObject({ type: 'order' });
    const loser = await harness.connect(newUser());
    expect(await loser.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('sold_out'));
  });
});

describe('rate limits', () => {
  it('answers rate_limited past the per-connection and the per-user rate, and keeps serving', async () => {
    const tight = await Harness.start({
      limits: { connectionRequestsPerSecond: 1, connectionBurstRequests: 3, userRequestsPerSecond: 1, userBurstRequests: 5 },
    });
    try {
      const user = newUser();
      const first = await tight.connect(user);
      const replies = await Promise.all(Array.from({ length: 4 }, () => first.request({ type: 'orders' })));
      expect(replies.map((reply) => reply.type === 'rejected' ? reply.reason : reply.type)).toEqual([
        'orders',
        'orders',
        'orders',
        'rate_limited',
      ]);
      // A second connection of the same user has a full connection bucket but shares the user's.
      const second = await tight.connect(user);
      const more = await Promise.all(Array.from({ length: 4 }, () => second.request({ type: 'orders' })));
      expect(more.map((reply) => reply.type === 'rejected' ? reply.reason : reply.type)).toEqual([
        'orders',
        'orders',
        'rate_limited',
        'rate_limited',
      ]);
      // Malformed frames count too, and are answered rate_limited with no id.
      second.send('garbage');
      expect(await second.waitFor((message) => message.id === null)).toMatchObject(rejection('rate_limited'));
      // Another user is not affected.
      const bystander = await tight.connect(newUser());
      expect(await bystander.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
    } finally {
      await tight.stop();
    }
  });
});

describe('the per-user limiter at its bound', () => {
  it('gives a user whose bucket it forgot a new one, shared again by all of that user\'s connections', async () => {
    const bounded = await Harness.start({
      limits: { userRequestsPerSecond: 0.001, userBurstRequests: 2, rateLimitedUsersMax: 1 },
    });
    try {
      const alice = newUser();
      const kind = (reply: { type: string; reason?: string }): string => (reply.type === 'rejected' ? reply.reason! : reply.type);
      const first = await bounded.connect(alice);
      expect(kind(await first.request({ type: 'orders' }))).toBe('orders');
      // Bob's connection takes the limiter's one place: alice's bucket, one token left, is forgotten.
      await bounded.connect(newUser());
      // Alice's connection asks again and gets a new bucket of two, which her next connection shares.
      expect(kind(await first.request({ type: 'orders' }))).toBe('orders');
      const second = await bounded.connect(alice);
      expect(kind(await second.request({ type: 'orders' }))).toBe('orders');
      expect(kind(await first.request({ type: 'orders' }))).toBe('rate_limited');
      expect(kind(await second.request({ type: 'orders' }))).toBe('rate_limited');
    } finally {
      await bounded.stop();
    }
  });
});

describe('connection limit', () => {
  it('refuses upgrades past connectionsMax with 503', async () => {
    const small = await Harness.start({ limits: { connectionsMax: 2 } });
    try {
      const first = await small.connect(newUser());
      await small.connect(newUser());
      const refusal = await small.connect(newUser()).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(UpgradeRefused);
      expect((refusal as UpgradeRefused).status).toBe(503);
      await first.close();
      await small.connect(newUser());
    } finally {
      await small.stop();
    }
  });
});

describe('malformed frames', () => {
  const invalidFrames: [string, unknown][] = [
    ['not JSON', '{"type": "buy",'],
    ['a JSON array', '[1, 2]'],
    ['a JSON number', '42'],
    ['a JSON string', '"buy"'],
    ['JSON null', 'null'],
    ['an object without a type', { id: 'x' }],
    ['an unknown type', { type: 'steal', id: 'x' }],
    ['a type of the wrong type', { type: 7, id: 'x' }],
    ['qty below 1', { type: 'buy', id: 'x', item: '1', qty: 0 }],
    ['qty not an integer', { type: 'buy', id: 'x', item: '1', qty: 1.5 }],
    ['qty as a string', { type: 'buy', id: 'x', item: '1', qty: '1' }],
    ['item as a number', { type: 'reserve', id: 'x', item: 1, qty: 1 }],
    ['item not a decimal id', { type: 'reserve', id: 'x', item: '0x10', qty: 1 }],
    ['items not an array', { type: 'subscribe', id: 'x', items: '1' }],
    ['an empty items array', { type: 'subscribe', id: 'x', items: [] }],
    ['a token of the wrong type', { type: 'confirm', id: 'x', token: 12 }],
    ['a missing token', { type: 'cancel', id: 'x' }],
    ['an answer of the wrong type', { type: 'buy', id: 'x', item: '1', qty: 1, challengeId: 'c', answer: true }],
    ['a missing id', { type: 'orders' }],
    ['an id that is too long', { type: 'orders', id: 'x'.repeat(65) }],
    ['an id that is a number', { type: 'orders', id: 5 }],
  ];

  it.each(invalidFrames)('answers %s with invalid and keeps the connection', async (_name, frame) => {
    const client = await harness.connect(newUser());
    const from = client.messages.length;
    client.send(frame);
    const reply = await client.waitFor((message) => message.type === 'rejected', from);
    expect(reply.reason).toBe('invalid');
    const echoed = typeof frame === 'object' && frame !== null ? (frame as { id?: unknown }).id : undefined;
    expect(reply.id).toBe(typeof echoed === 'string' && echoed.length <= 64 ? echoed : null);
    expect(await client.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
  });

  it('answers a binary frame with invalid and id null', async () => {
    const client = await harness.connect(newUser());
    client.send(Buffer.from(JSON.stringify({ type: 'orders', id: 'bin' })));
    expect(await client.waitFor((message) => message.type === 'rejected')).toMatchObject({
      type: 'rejected',
      id: null,
      reason: 'invalid',
    });
    expect(await client.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
  });

  it('answers a frame over the payload limit with invalid, and closes on one over the frame limit', async () => {
    const client = await harness.connect(newUser());
    client.send(JSON.stringify({ type: 'orders', id: 'big', padding: 'x'.repeat(10_000) }));
    expect(await client.waitFor((message) => message.type === 'rejected')).toMatchObject({ id: null, reason: 'invalid' });
    expect(await client.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
    client.send('x'.repeat(40_000));
    expect((await client.closed).code).toBe(1006);
    // The server keeps serving.
    const next = await harness.connect(newUser());
    expect(await next.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
  });
});

describe('frames uWebSockets.js refuses', () => {
  it('drops a connection whose text frame is not UTF-8 (1006), and keeps serving', async () => {
    const raw = await RawWebSocket.connect(harness.server.port, `/ws?token=${await harness.token(newUser())}`);
    raw.sendBytes(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    await raw.ended;
    expect(raw.closeCode).toBeNull();
    const next = await harness.connect(newUser());
    expect(await next.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
  });
});

describe('authentication', () => {
  async function refused(url: string): Promise<UpgradeRefused> {
    try {
      await TestClient.connect(url);
    } catch (error) {
      if (error instanceof UpgradeRefused) return error;
      throw error;
    }
    throw new Error('the upgrade was accepted');
  }

  it('refuses the upgrade with 401 for a missing, forged, expired or malformed token', async () => {
    const base = harness.server.wsUrl;
    const expired = await harness.token(newUser(), { exp: Math.floor(Date.now() / 1000) - 10 });
    const forged = await harness.token(newUser(), {}, 'another-secret-another-secret-another-secret');
    const badSubject = await harness.token('alice');
    const badLevel = await harness.token(newUser(), { level: '3' as unknown as number });
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: '1' })).toString('base64url');
    const unsigned = `${header}.${payload}.`;
    for (const url of [
      base,
      `${base}?token=`,
      `${base}?token=garbage`,
      `${base}?token=${expired}`,
      `${base}?token=${forged}`,
      `${base}?token=${badSubject}`,
      `${base}?token=${badLevel}`,
      `${base}?token=${unsigned}`,
    ]) {
      const refusal = await refused(url);
      expect(refusal.status).toBe(401);
      expect(JSON.parse(refusal.body)).toEqual({ error: 'unauthorized' });
    }
    const client = await harness.connect(newUser(), { exp: Math.floor(Date.now() / 1000) + 600 });
    expect(await client.request({ type: 'orders' })).toMatchObject({ type: 'orders' });
  });

  it('answers 401 on the HTTP user and admin routes without the right bearer token', async () => {
    const forged = await harness.token(newUser(), {}, 'another-secret-another-secret-another-secret');
    const checks: [string, string, string | undefined][] = [
      ['GET', '/orders', undefined],
      ['GET', '/orders', forged],
      ['GET', '/orders', adminToken],
      ['POST', '/admin/items', undefined],
      ['POST', '/admin/items', await harness.token(newUser())],
      ['POST', '/admin/items/1/stock', 'wrong'],
      ['GET', '/admin/orders?seller=7', undefined],
      ['PUT', '/admin/blocklist/5', 'wrong'],
      ['DELETE', '/admin/blocklist/5', undefined],
    ];
    for (const [method, path, token] of checks) {
      const reply = await harness.http(method, path, { token, body: method === 'POST' ? {} : undefined });
      expect({ method, path, status: reply.status, body: reply.body }).toEqual({
        method,
        path,
        status: 401,
        body: { error: 'unauthorized' },
      });
    }
  });
});

describe('HTTP routes', () => {
  it('healthz, readyz and metrics', async () => {
    expect(await harness.http('GET', '/healthz')).toMatchObject({ status: 200, body: { ok: true } });
    expect(await harness.http('GET', '/readyz')).toMatchObject({ status: 200 });
    const ackedBuys = async (): Promise<number> => (await metricValue('seckill_ack_duration_seconds_count{type="buy"}')) ?? 0;
    const ackedBefore = await ackedBuys();
    const item = await harness.createItem({ stock: 1 });
    for (let attempt = 0; attempt < 2; attempt++) {
      await (await harness.connect(newUser())).request({ type: 'buy', item: item.id, qty: 1 });
    }
    // One order and one sold_out: both are requests the engine decided, each observed once.
    expect((await ackedBuys()) - ackedBefore).toBe(2);
    const client = await harness.connect(newUser());
    await client.request({ type: 'orders' });
    const metrics = await harness.http('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toContain('text/plain');
    expect(metrics.text).toMatch(/seckill_requests_total\{type="orders",outcome="ok"\} [1-9]/);
    expect(metrics.text).toMatch(/seckill_flush_batch_events_count [1-9]/);
    expect(metrics.text).toContain('seckill_flush_duration_seconds_bucket');
    expect(metrics.text).toMatch(/seckill_open_connections [1-9]/);
    expect(metrics.text).toContain('seckill_journal_backlog_events 0');
  });

  it('creates items: 201 with the view, 400 for an invalid body, 409 for a taken id', async () => {
    const id = harness.itemId();
    const created = await harness.admin('POST', '/admin/items', {
      id,
      name: 'Console',
      sellerId: '9',
      stock: 12,
      perUserLimit: 2,
      reserveTtlMs: 30_000,
      slices: 2,
      challenge: 'none',
      eligibility: { minLevel: 1 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id,
      name: 'Console',
      sellerId: '9',
      stock: 12,
      available: 12,
      reserved: 0,
      sold: 0,
      perUserLimit: 2,
      endsAt: null,
      status: 'on_sale',
    });
    expect((await harness.admin('POST', '/admin/items', { id, name: 'Again', sellerId: '9', stock: 1 })).status).toBe(409);
    for (const body of [
      { name: 'No id', sellerId: '9', stock: 1 },
      { id: harness.itemId(), name: 'Negative', sellerId: '9', stock: -1 },
      { id: 'abc', name: 'Bad id', sellerId: '9', stock: 1 },
      { id: '0', name: 'Zero id', sellerId: '9', stock: 1 },
      { id: harness.itemId(), name: 'Bad seller', sellerId: 9, stock: 1 },
      { id: harness.itemId(), name: 'Ends first', sellerId: '9', stock: 1, startsAt: 2_000, endsAt: 1_000 },
      '{"id": "1", ',
    ]) {
      const reply = await harness.admin('POST', '/admin/items', body);
      expect(reply.status).toBe(400);
      expect(reply.body).toMatchObject({ error: 'invalid' });
      expect(typeof (reply.body as { message?: unknown }).message).toBe('string');
    }
    expect((await harness.http('GET', `/items/${id}`)).body).toMatchObject({ name: 'Console', stock: 12 });
    const oversized = await harness.admin('POST', '/admin/items', { id: harness.itemId(), name: 'x'.repeat(100_000), sellerId: '9', stock: 1 });
    expect(oversized).toMatchObject({ status: 400, body: { error: 'invalid' } });
  });

  it('restocks: 200 with the view, 400 for a bad delta, 404 for an unknown item', async () => {
    const item = await harness.createItem({ stock: 1 });
    const client = await harness.connect(newUser());
    await client.request({ type: 'buy', item: item.id, qty: 1 });
    const restocked = await harness.admin('POST', `/admin/items/${item.id}/stock`, { delta: 4 });
    expect(restocked).toMatchObject({ status: 200, body: { stock: 5, available: 4, sold: 1, status: 'on_sale' } });
    for (const body of [{ delta: 0 }, { delta: -3 }, { delta: 1.5 }, { delta: '2' }, {}]) {
      expect((await harness.admin('POST', `/admin/items/${item.id}/stock`, body)).status).toBe(400);
    }
    expect((await harness.admin('POST', '/admin/items/987654321/stock', { delta: 1 })).status).toBe(404);
  });

  it("GET /items/:id serves the view from memory; 404 when there is no such item", async () => {
    const item = await harness.createItem({ stock: 3 });
    const view = await harness.http('GET', `/items/${item.id}`);
    expect(view.status).toBe(200);
    const body = view.body as Record<string, number | string | null>;
    // The contract's fields, and the sale's other terms the server adds (docs/PROTOCOL.md).
    expect(Object.keys(body).sort()).toEqual(
      [
        'available', 'endsAt', 'id', 'name', 'perUserLimit', 'reserved', 'sellerId', 'sold', 'startsAt', 'status', 'stock',
        'reserveTtlMs', 'slices', 'challenge', 'eligibility',
      ].sort(),
    );
    expect((body.available as number) + (body.reserved as number) + (body.sold as number)).toBe(body.stock);
    expect((await harness.http('GET', '/items/123456789')).status).toBe(404);
  });

  it("GET /admin/orders?seller= lists a seller's orders, newest first", async () => {
    const item = await harness.createItem({ sellerId: '31337', stock: 5 });
    const buyers = [newUser(), newUser()];
    const orderIds: unknown[] = [];
    for (const user of buyers) {
      const client = await harness.connect(user);
      orderIds.push((await client.request({ type: 'buy', item: item.id, qty: 1 })).orderId);
    }
    const listed = await harness.admin('GET', '/admin/orders?seller=31337');
    expect(listed.status).toBe(200);
    expect((listed.body as { orderId: string; sellerId: string }[]).map((order) => order.orderId)).toEqual(orderIds.reverse());
    expect((await harness.admin('GET', '/admin/orders')).status).toBe(400);
    expect((await harness.admin('GET', '/admin/orders?seller=x')).status).toBe(400);
  });

  it('answers 400 for a blocklist user id that is not an id, and 404 for unknown routes', async () => {
    expect((await harness.admin('PUT', '/admin/blocklist/alice')).status).toBe(400);
    expect(await harness.http('GET', '/nowhere')).toMatchObject({ status: 404, body: { error: 'not_found' } });
  });
});

describe('restarts', () => {
  it('keeps orders, figures and the blocklist across a restart on the same database', async () => {
    const item = await harness.createItem({ stock: 4, perUserLimit: 2 });
    const buyer = newUser();
    const blocked = newUser();
    const client = await harness.connect(buyer);
    const order = await client.request({ type: 'buy', item: item.id, qty: 2 });
    expect((await harness.admin('PUT', `/admin/blocklist/${blocked}`)).status).toBe(200);
    await harness.restart();
    expect((await harness.http('GET', `/items/${item.id}`)).body).toMatchObject({ available: 2, sold: 2 });
    const again = await harness.connect(buyer);
    const listed = await again.request({ type: 'orders' });
    expect((listed.orders as { orderId: string }[])[0]?.orderId).toBe(order.orderId);
    const shut = await harness.connect(blocked);
    expect(await shut.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject(rejection('blocked'));
  });
});

async function flushCount(): Promise<number> {
  return (await metricValue('seckill_flush_batch_events_count')) ?? Number.NaN;
}

/** The value of one series (a name, with its labels if it has any) on /metrics, if it is there. */
async function metricValue(series: string): Promise<number | undefined> {
  const text = (await harness.http('GET', '/metrics')).text;
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
