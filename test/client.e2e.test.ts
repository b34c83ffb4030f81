/**
 * SeckillClient against the real server on the real engine and PostgreSQL: the happy path,
 * every rejection reason of PROTOCOL.md, reconnecting across a server restart with the
 * subscriptions renewed, and a purchase whose answer is lost on the way back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RequestParser } from '../src/edge/protocol.js';
import {
  OutcomeUnknownError,
  SeckillClient,
  rejectionReasons,
  type ConnectionChange,
  type Outcome,
  type RejectionReason,
  type SeckillClientOptions,
  type StockUpdate,
} from '../src/client/index.js';
import { Harness, solve } from './e2e/harness.js';
import { WebSocketProxy } from './e2e/webSocketProxy.js';

let harness: Harness;
const clients: SeckillClient[] = [];
let userCounter = 12_000;
function newUser(): string {
  userCounter += 1;
  return String(userCounter);
}

beforeAll(async () => {
  harness = await Harness.start();
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await harness?.stop();
});

function connect(target: Harness, userId: string, options: Partial<SeckillClientOptions> = {}): SeckillClient {
  const client = new SeckillClient({ url: target.server.wsUrl, token: () => target.token(userId), ...options });
  clients.push(client);
  return client;
}

function reasonOf(outcome: Outcome<unknown>): RejectionReason | 'ok' {
  return outcome.ok ? 'ok' : outcome.reason;
}

/** Resolves when the client's connection reaches `state`. */
function reaches(client: SeckillClient, state: ConnectionChange['state']): Promise<void> {
  return new Promise((resolve) => {
    const stop = client.onConnectionChange((change) => {
      if (change.state !== state) return;
      stop();
      resolve();
    });
  });
}

async function nextMatching(updates: AsyncIterator<StockUpdate>, done: (update: StockUpdate) => boolean): Promise<StockUpdate> {
  for (;;) {
    const { value, done: ended } = await updates.next();
    if (ended) throw new Error('the stock feed ended');
    if (done(value)) return value;
  }
}

describe('the happy path', () => {
  it('subscribes, sees stock, reserves, confirms, buys, cancels and lists orders', async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 3 });
    const client = connect(harness, newUser());
    const pushed: StockUpdate[] = [];
    client.onStock((update) => pushed.push(update));

    expect(await client.subscribe([item.id])).toEqual({ ok: true, type: 'subscribed', items: [item.id] });
    const updates = client.stockUpdates([item.id]);
    expect((await updates.next()).value).toMatchObject({ item: item.id, available: 5, reserved: 0, sold: 0, status: 'on_sale' });

    const reserved = await client.reserve(item.id, 1);
    if (!reserved.ok) throw new Error(`reserve: ${reserved.reason}`);
    expect(reserved.expiresAt).toBeGreaterThan(Date.now());
    const order = await client.confirm(reserved.token);
    expect(order).toMatchObject({ ok: true, type: 'order', item: item.id, qty: 1 });
    const bought = await client.buy(item.id, 1);
    expect(bought).toMatchObject({ ok: true, type: 'order', item: item.id, qty: 1 });

    const held = await client.reserve(item.id, 1);
    if (!held.ok) throw new Error(`reserve: ${held.reason}`);
    expect(await client.cancel(held.token)).toEqual({ ok: true, type: 'released', item: item.id, qty: 1 });

    const orders = await client.orders();
    if (!orders.ok) throw new Error(`orders: ${orders.reason}`);
    const orderIds = orders.orders.map((each) => each.orderId).sort();
    expect(orderIds).toEqual([order.ok ? order.orderId : '', bought.ok ? bought.orderId : ''].sort());

    expect(await nextMatching(updates, (update) => update.sold === 2 && update.reserved === 0)).toMatchObject({ available: 3 });
    expect(pushed.at(-1)).toMatchObject({ sold: 2, reserved: 0, available: 3 });
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 2, reserved: 0, available: 3 });
  });

  it('answers a challenge and buys with the answer', async () => {
    const item = await harness.createItem({ challenge: 'arithmetic' });
    const client = connect(harness, newUser());
    const challenge = await client.challenge(item.id);
    if (!challenge.ok) throw new Error(`challenge: ${challenge.reason}`);
    const order = await client.buy(item.id, 1, { challengeId: challenge.challengeId, answer: solve(challenge.prompt) });
    expect(order).toMatchObject({ ok: true, type: 'order' });
  });
});

describe('every rejection reason arrives as a value', () => {
  const user = newUser;
  const scenarios: Record<RejectionReason, () => Promise<Outcome<unknown>>> = {
    sold_out: async () => {
      const item = await harness.createItem({ stock: 1 });
      await connect(harness, user()).buy(item.id, 1);
      return connect(harness, user()).buy(item.id, 1);
    },
    limit_exceeded: async () => {
      const item = await harness.createItem({ perUserLimit: 1 });
      const client = connect(harness, user());
      await client.buy(item.id, 1);
      return client.buy(item.id, 1);
    },
    not_started: async () => connect(harness, user()).buy((await harness.createItem({ startsAt: Date.now() + 3_600_000 })).id, 1),
    ended: async () => {
      const item = await harness.createItem({ startsAt: Date.now() - 7_200_000, endsAt: Date.now() - 3_600_000 });
      return connect(harness, user()).buy(item.id, 1);
    },
    unknown_item: async () => connect(harness, user()).buy('987654321', 1),
    not_eligible: async () => connect(harness, user()).buy((await harness.createItem({ eligibility: { minLevel: 2 } })).id, 1),
    blocked: async () => {
      const blocked = user();
      expect((await harness.admin('PUT', `/admin/blocklist/${blocked}`)).status).toBe(200);
      return connect(harness, blocked).buy((await harness.createItem()).id, 1);
    },
    challenge_required: async () => connect(harness, user()).buy((await harness.createItem({ challenge: 'arithmetic' })).id, 1),
    bad_answer: async () => {
      const item = await harness.createItem({ challenge: 'arithmetic' });
      const client = connect(harness, user());
      const challenge = await client.challenge(item.id);
      if (!challenge.ok) throw new Error(`challenge: ${challenge.reason}`);
      return client.buy(item.id, 1, { challengeId: challenge.challengeId, answer: solve(challenge.prompt) + 1 });
    },
    token_invalid: async () => connect(harness, user()).confirm('not-a-reservation-token'),
    token_expired: async () => {
      const item = await harness.createItem({ reserveTtlMs: 1_000 });
      const client = connect(harness, user());
      const reserved = await client.reserve(item.id, 1);
      if (!reserved.ok) throw new Error(`reserve: ${reserved.reason}`);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      return client.confirm(reserved.token);
    },
    token_used: async () => {
      const client = connect(harness, user());
      const reserved = await client.reserve((await harness.createItem()).id, 1);
      if (!reserved.ok) throw new Error(`reserve: ${reserved.reason}`);
      await client.confirm(reserved.token);
      return client.confirm(reserved.token);
    },
    rate_limited: async () => {
      // Without retries, a burst past the user's 40 requests answers rate_limited.
      const client = connect(harness, user(), { retry: { retriesMax: 0 } });
      const outcomes = await Promise.all(Array.from({ length: 60 }, () => client.challenge('1')));
      return outcomes.find((outcome) => !outcome.ok && outcome.reason === 'rate_limited') ?? outcomes[0]!;
    },
    invalid: async () => connect(harness, user()).buy((await harness.createItem()).id, 0),
    unavailable: async () => {
      // A second server on its own database, so that stopping it spares the others.
      const stopping = await Harness.start();
      try {
        const client = connect(stopping, user(), { retry: { retriesMax: 0 } });
        const item = await stopping.createItem();
        expect(await client.orders()).toMatchObject({ ok: true });
        stopping.server.stopAccepting();
        return await client.buy(item.id, 1);
      } finally {
        await stopping.stop();
      }
    },
  };

  it('has a scenario for each reason of the contract', () => {
    expect(Object.keys(scenarios).sort()).toEqual([...rejectionReasons].sort());
  });

  it.each(Object.keys(scenarios) as RejectionReason[])('%s', async (reason) => {
    expect(reasonOf(await scenarios[reason]())).toBe(reason);
  });

  it('retries rate_limited with backoff until every request of a burst is answered', async () => {
    const client = connect(harness, newUser(), { retry: { retriesMax: 8, delayBaseMs: 200, delayMaxMs: 2_000 } });
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => client.challenge('1')));
    expect(outcomes.map(reasonOf).filter((reason) => reason !== 'unknown_item')).toEqual([]);
  });
});

describe('a server restart', () => {
  let restarting: Harness;
  /** The address clients use, kept while the server restarts behind it on a new port. */
  let balancer: WebSocketProxy;

  beforeAll(async () => {
    restarting = await Harness.start();
    balancer = await WebSocketProxy.start(restarting.server.port);
  });

  afterAll(async () => {
    await balancer?.close();
    await restarting?.stop();
  });

  async function restartServer(): Promise<void> {
    await restarting.restart();
    balancer.retarget(restarting.server.port);
  }

  function throughBalancer(userId: string, options: Partial<SeckillClientOptions> = {}): SeckillClient {
    return connect(restarting, userId, { url: balancer.wsUrl, reconnect: { delayBaseMs: 100, delayMaxMs: 500 }, ...options });
  }

  it('reconnects with a fresh token, renews the subscriptions, and the feed goes on', async () => {
    const item = await restarting.createItem({ stock: 10 });
    const userId = newUser();
    let tokensIssued = 0;
    const client = throughBalancer(userId, {
      token: () => {
        tokensIssued += 1;
        return restarting.token(userId);
      },
    });
    expect(await client.subscribe([item.id])).toMatchObject({ ok: true });
    const updates = client.stockUpdates([item.id]);
    await nextMatching(updates, (update) => update.sold === 0);
    expect(tokensIssued).toBe(1);

    const lost = reaches(client, 'waiting');
    await restartServer();
    await lost;
    await reaches(client, 'open');
    expect(tokensIssued).toBeGreaterThanOrEqual(2);

    // Nothing subscribes again but the client itself: a push after a buy proves it did.
    const buyer = await restarting.connect(newUser());
    expect(await buyer.request({ type: 'buy', item: item.id, qty: 1 })).toMatchObject({ type: 'order' });
    expect(await nextMatching(updates, (update) => update.sold === 1)).toMatchObject({ available: 9, status: 'on_sale' });
    expect(await client.buy(item.id, 1)).toMatchObject({ ok: true, type: 'order' });
  });

  it('queues requests made while the server is down and answers them once it is back', async () => {
    const item = await restarting.createItem({ stock: 10 });
    const client = throughBalancer(newUser());
    expect(await client.orders()).toMatchObject({ ok: true, orders: [] });
    const lost = reaches(client, 'waiting');
    await restarting.stop();
    await lost;
    const bought = client.buy(item.id, 1, { timeoutMs: 30_000 });
    await restarting.boot();
    balancer.retarget(restarting.server.port);
    expect(await bought).toMatchObject({ ok: true, type: 'order' });
    expect(restarting.engine.item(item.id)).toMatchObject({ sold: 1 });
  });
});

describe('a purchase whose answer is lost', () => {
  let proxy: WebSocketProxy;

  beforeAll(async () => {
    proxy = await WebSocketProxy.start(harness.server.port);
  });

  afterAll(async () => {
    await proxy?.close();
  });

  function throughProxy(userId: string, options: Partial<SeckillClientOptions> = {}): SeckillClient {
    return connect(harness, userId, {
      url: proxy.wsUrl,
      reconnect: { delayBaseMs: 50, delayMaxMs: 200 },
      ...options,
    });
  }

  it('fails with OutcomeUnknownError when the server ignores keys, and the order exists once', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 5 });
    const client = throughProxy(newUser(), { idempotencyKeys: false });
    expect(await client.orders()).toMatchObject({ ok: true });
    proxy.dropNextReplyContaining('"type":"order"');
    await expect(client.buy(item.id, 1)).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(proxy.dropped).toBe(1);
    const orders = await client.orders();
    expect(orders.ok && orders.orders.length).toBe(1);
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1 });
  });

  const serverHonoursKeys =
    (new RequestParser(1).parse({ type: 'buy', id: 'probe', item: '1', qty: 1, idempotencyKey: 'probe' }) as {
      request?: { idempotencyKey?: string };
    }).request?.idempotencyKey === 'probe';

  it.skipIf(!serverHonoursKeys)('is sent again after the reconnect with its key, and answered with the one order', async () => {
    const item = await harness.createItem({ stock: 10, perUserLimit: 5 });
    const client = throughProxy(newUser());
    expect(await client.orders()).toMatchObject({ ok: true });
    proxy.dropNextReplyContaining('"type":"order"');
    const bought = await client.buy(item.id, 1);
    expect(proxy.dropped).toBeGreaterThanOrEqual(1);
    if (!bought.ok) throw new Error(`buy: ${bought.reason}`);
    const orders = await client.orders();
    if (!orders.ok) throw new Error(`orders: ${orders.reason}`);
    expect(orders.orders.map((order) => order.orderId)).toEqual([bought.orderId]);
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1 });
  });
});
