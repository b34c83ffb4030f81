/**
 * The client's machinery against a scripted fake socket, with fake timers: correlation,
 * retries, reconnects, what each lost answer becomes, and the stock feed. The real server is
 * in test/client.e2e.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelayMs } from './backoff.js';
import { SeckillClient, type SeckillClientOptions } from './client.js';
import { ClientClosedError, OutcomeUnknownError, QueueFullError, RequestTimeoutError } from './errors.js';
import type { StockUpdate } from './messages.js';
import type { SocketLike } from './reconnectingSocket.js';

type Frame = Record<string, unknown> & { type: string; id: string };

class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  readonly sent: Frame[] = [];
  closedWith: number | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Frame);
  }

  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  reply(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }

  last(): Frame {
    return this.sent[this.sent.length - 1]!;
  }
}

let sockets: FakeSocket[];
let tokens: number;
const clients: SeckillClient[] = [];

function connect(options: Partial<SeckillClientOptions> = {}): SeckillClient {
  const client = new SeckillClient({
    url: 'ws://sale.test/ws',
    token: () => `token-${(tokens += 1)}`,
    WebSocket: class extends FakeSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    },
    random: () => 0.5,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Lets the async connect run, and timers due within `ms`. */
async function elapse(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

function socket(): FakeSocket {
  return sockets[sockets.length - 1]!;
}

beforeEach(() => {
  vi.useFakeTimers();
  sockets = [];
  tokens = 0;
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
});

describe('requests', () => {
  it('correlates replies by id in any order, and returns rejections as values', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const bought = client.buy('42', 1);
    const listed = client.orders();
    const [buy, orders] = socket().sent;
    expect(buy).toMatchObject({ type: 'buy', item: '42', qty: 1 });
    expect(buy!.idempotencyKey).toMatch(/^[0-9a-f]{32}$/);
    expect(buy!.id).not.toBe(orders!.id);
    socket().reply({ type: 'orders', id: orders!.id, orders: [] });
    socket().reply({ type: 'rejected', id: buy!.id, reason: 'sold_out', message: 'no more' });
    expect(await listed).toEqual({ ok: true, type: 'orders', orders: [] });
    expect(await bought).toEqual({ ok: false, reason: 'sold_out', message: 'no more' });
  });

  it('queues requests made before the connection opens and sends them once it does', async () => {
    const client = connect();
    const reserved = client.reserve('42', 2, { challengeId: 'c1', answer: 19 });
    await elapse();
    expect(socket().sent).toEqual([]);
    socket().open();
    expect(socket().last()).toMatchObject({ type: 'reserve', item: '42', qty: 2, challengeId: 'c1', answer: 19 });
    socket().reply({ type: 'reserved', id: socket().last().id, token: 't', expiresAt: 5, item: '42', qty: 2 });
    expect(await reserved).toMatchObject({ ok: true, type: 'reserved', token: 't' });
  });

  it('refuses requests past queuedRequestsMax while there is no connection', async () => {
    const client = connect({ queuedRequestsMax: 1 });
    void client.orders().catch(() => undefined);
    await expect(client.orders()).rejects.toBeInstanceOf(QueueFullError);
  });
});

describe('retries of unavailable and rate_limited', () => {
  it('sends the purchase again after a backoff, with a fresh id and the same idempotency key', async () => {
    const client = connect({ retry: { delayBaseMs: 100, delayMaxMs: 1_000 } });
    await elapse();
    socket().open();
    const bought = client.buy('42', 1, { idempotencyKey: 'my-key' });
    const first = socket().last();
    socket().reply({ type: 'rejected', id: first.id, reason: 'rate_limited' });
    // Equal jitter with random 0.5: the first wait is 75 ms, the second 150 ms.
    await elapse(74);
    expect(socket().sent).toHaveLength(1);
    await elapse(1);
    const second = socket().last();
    expect(second).toMatchObject({ type: 'buy', idempotencyKey: 'my-key' });
    expect(second.id).not.toBe(first.id);
    socket().reply({ type: 'rejected', id: second.id, reason: 'unavailable' });
    await elapse(150);
    const third = socket().last();
    expect(third.idempotencyKey).toBe('my-key');
    socket().reply({ type: 'order', id: third.id, orderId: '9', item: '42', qty: 1 });
    expect(await bought).toEqual({ ok: true, type: 'order', orderId: '9', item: '42', qty: 1 });
  });

  it('returns the last rejection once retriesMax retries are spent', async () => {
    const client = connect({ retry: { retriesMax: 2, delayBaseMs: 10, delayMaxMs: 10 } });
    await elapse();
    socket().open();
    const confirmed = client.confirm('t');
    for (let attempt = 0; attempt < 3; attempt++) {
      socket().reply({ type: 'rejected', id: socket().last().id, reason: 'unavailable' });
      await elapse(10);
    }
    expect(socket().sent).toHaveLength(3);
    expect(await confirmed).toEqual({ ok: false, reason: 'unavailable' });
  });

  it('does not retry a business answer', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const bought = client.buy('42', 1);
    socket().reply({ type: 'rejected', id: socket().last().id, reason: 'limit_exceeded' });
    expect(await bought).toEqual({ ok: false, reason: 'limit_exceeded' });
    await elapse(10_000);
    expect(socket().sent).toHaveLength(1);
  });
});

describe('a dropped connection', () => {
  it('reconnects with backoff and a fresh token, renews subscriptions first, then sends again what is safe', async () => {
    const client = connect({ reconnect: { delayBaseMs: 200, delayMaxMs: 800 } });
    await elapse();
    const first = socket();
    first.open();
    const subscribed = client.subscribe(['42', '43']);
    first.reply({ type: 'subscribed', id: first.last().id, items: ['42', '43'] });
    expect(await subscribed).toMatchObject({ ok: true });
    const bought = client.buy('42', 1);
    const listed = client.orders();
    const boughtKey = first.sent[1]!.idempotencyKey;
    first.drop();
    expect(client.state).toBe('waiting');
    // The first wait is 150 ms (equal jitter of 200 with random 0.5), then 300 ms after a failure.
    await elapse(149);
    expect(sockets).toHaveLength(1);
    await elapse(1);
    expect(sockets).toHaveLength(2);
    socket().drop();
    await elapse(299);
    expect(sockets).toHaveLength(2);
    await elapse(1);
    const third = socket();
    expect(sockets.map((each) => new URL(each.url).searchParams.get('token'))).toEqual(['token-1', 'token-2', 'token-3']);
    third.open();
    expect(third.sent.map((frame) => frame.type)).toEqual(['subscribe', 'buy', 'orders']);
    expect(third.sent[0]).toMatchObject({ items: ['42', '43'] });
    expect(third.sent[1]!.idempotencyKey).toBe(boughtKey);
    third.reply({ type: 'order', id: third.sent[1]!.id, orderId: '9', item: '42', qty: 1 });
    third.reply({ type: 'orders', id: third.sent[2]!.id, orders: [] });
    expect(await bought).toMatchObject({ ok: true, orderId: '9' });
    expect(await listed).toMatchObject({ ok: true });
  });

  it('fails a confirm or cancel that was sent with OutcomeUnknownError, never with an invented answer', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const confirmed = client.confirm('t');
    const cancelled = client.cancel('u');
    socket().drop();
    await expect(confirmed).rejects.toMatchObject({ name: 'OutcomeUnknownError', requestType: 'confirm', why: 'connection_lost' });
    await expect(cancelled).rejects.toBeInstanceOf(OutcomeUnknownError);
  });

  it('fails a lost purchase with OutcomeUnknownError when the server ignores idempotency keys', async () => {
    const client = connect({ idempotencyKeys: false });
    await elapse();
    socket().open();
    const bought = client.buy('42', 1);
    socket().drop();
    await expect(bought).rejects.toMatchObject({ name: 'OutcomeUnknownError', requestType: 'buy' });
  });

  it('will not pass on "unavailable" for a purchase an earlier attempt of which may have committed', async () => {
    const client = connect({ retry: { retriesMax: 0 } });
    await elapse();
    socket().open();
    const bought = client.buy('42', 1);
    socket().drop();
    await elapse(1_000);
    socket().open();
    socket().reply({ type: 'rejected', id: socket().last().id, reason: 'unavailable' });
    await expect(bought).rejects.toBeInstanceOf(OutcomeUnknownError);
  });

  it('reconnects at once, with a fresh token, when the server closes with 4401 (token expired)', async () => {
    connect();
    await elapse();
    socket().open();
    await elapse(10_000);
    socket().drop(4401);
    await elapse(0);
    expect(sockets).toHaveLength(2);
    expect(new URL(socket().url).searchParams.get('token')).toBe('token-2');
  });
});

describe('timeouts', () => {
  it('RequestTimeoutError for a request that never left, OutcomeUnknownError for a purchase that did', async () => {
    const client = connect();
    await elapse();
    const queued = client.buy('42', 1, { timeoutMs: 1_000 });
    const queuedResult = expect(queued).rejects.toMatchObject({ name: 'RequestTimeoutError', requestType: 'buy' });
    await elapse(1_000);
    await queuedResult;
    socket().open();
    const sent = client.buy('42', 1, { timeoutMs: 1_000 });
    const sentResult = expect(sent).rejects.toMatchObject({ name: 'OutcomeUnknownError', why: 'timeout' });
    await elapse(1_000);
    await sentResult;
    const read = client.orders({ timeoutMs: 500 });
    const readResult = expect(read).rejects.toBeInstanceOf(RequestTimeoutError);
    await elapse(500);
    await readResult;
  });

  it('ignores a reply that comes after the timeout', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const read = client.orders({ timeoutMs: 100 });
    const result = expect(read).rejects.toBeInstanceOf(RequestTimeoutError);
    await elapse(100);
    await result;
    socket().reply({ type: 'orders', id: socket().last().id, orders: [] });
  });
});

describe('the stock feed', () => {
  it('calls back on every push, and iterates the latest figures of each item', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const seen: StockUpdate[] = [];
    client.onStock((update) => seen.push(update));
    const updates = client.stockUpdates(['42', '43']);
    const push = (item: string, sold: number): void =>
      socket().reply({ type: 'stock', item, available: 10 - sold, reserved: 0, sold, status: 'on_sale' });
    push('42', 1);
    push('43', 1);
    push('42', 2);
    push('44', 1);
    expect(seen.map((update) => `${update.item}:${update.sold}`)).toEqual(['42:1', '43:1', '42:2', '44:1']);
    // Item 42's first figures were replaced by its newer ones; 44 is not asked for.
    expect((await updates.next()).value).toMatchObject({ item: '43', sold: 1 });
    expect((await updates.next()).value).toMatchObject({ item: '42', sold: 2 });
    const waiting = updates.next();
    push('43', 3);
    expect((await waiting).value).toMatchObject({ item: '43', sold: 3 });
    client.close();
    expect(await updates.next()).toEqual({ value: undefined, done: true });
  });
  it('starts an iterator opened after the first push with the latest figures of the subscribed items', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const subscribed = client.subscribe(['42']);
    // The push that follows `subscribed` is handled before the caller's await resumes.
    socket().reply({ type: 'subscribed', id: socket().last().id, items: ['42'] });
    socket().reply({ type: 'stock', item: '42', available: 9, reserved: 0, sold: 1, status: 'on_sale' });
    await subscribed;
    const updates = client.stockUpdates(['42']);
    expect((await updates.next()).value).toMatchObject({ item: '42', sold: 1 });
    const unsubscribed = client.unsubscribe(['42']);
    socket().reply({ type: 'unsubscribed', id: socket().last().id, items: ['42'] });
    await unsubscribed;
    const later = client.stockUpdates(['42']);
    client.close();
    expect(await later.next()).toEqual({ value: undefined, done: true });
  });
});

describe('close', () => {
  it('fails what may have taken effect with OutcomeUnknownError and the rest with ClientClosedError', async () => {
    const client = connect();
    await elapse();
    socket().open();
    const sent = client.buy('42', 1);
    const read = client.orders();
    client.close();
    await expect(sent).rejects.toMatchObject({ name: 'OutcomeUnknownError', why: 'client_closed' });
    await expect(read).rejects.toBeInstanceOf(ClientClosedError);
    await expect(client.orders()).rejects.toBeInstanceOf(ClientClosedError);
    expect(socket().closedWith).toBe(1000);
    expect(client.state).toBe('closed');
  });
});

describe('backoffDelayMs', () => {
  it.each([
    [0, 0, 50],
    [0, 0.999, 100],
    [1, 0, 100],
    [3, 0.5, 600],
    [10, 0, 500],
    [10, 0.999, 1_000],
  ])('attempt %i with random %f waits %i ms (base 100, max 1000)', (attempt, random, expected) => {
    expect(backoffDelayMs({ delayBaseMs: 100, delayMaxMs: 1_000 }, attempt, () => random)).toBe(expected);
  });
});
