import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock, type Clock, type TimerHandle } from '../clock.js';
import type { ItemView } from '../items.js';
import { StockFeed, stockTopic, type StockTransport } from './stockFeed.js';

interface Delivery {
  readonly atMs: number;
  readonly sold: number;
  readonly status: string;
}

/** A pub/sub transport that records what each subscriber receives, and when. */
class RecordingTransport implements StockTransport<string> {
  readonly topics = new Map<string, Set<string>>();
  readonly received = new Map<string, Delivery[]>();
  published = 0;

  constructor(private readonly clock: Clock) {}

  publish(topic: string, message: string): void {
    this.published += 1;
    for (const subscriber of this.topics.get(topic) ?? []) this.deliver(subscriber, message);
  }

  subscribe(subscriber: string, topic: string): void {
    if (!this.topics.has(topic)) this.topics.set(topic, new Set());
    this.topics.get(topic)!.add(subscriber);
  }

  unsubscribe(subscriber: string, topic: string): void {
    this.topics.get(topic)?.delete(subscriber);
  }

  send(subscriber: string, message: string): void {
    this.deliver(subscriber, message);
  }

  of(subscriber: string): Delivery[] {
    return this.received.get(subscriber) ?? [];
  }

  private deliver(subscriber: string, message: string): void {
    const parsed = JSON.parse(message) as { sold: number; status: string };
    if (!this.received.has(subscriber)) this.received.set(subscriber, []);
    this.received.get(subscriber)!.push({ atMs: this.clock.now(), sold: parsed.sold, status: parsed.status });
  }
}

/** An item whose `sold` counts its changes, so the order of pushes can be checked. */
class FakeItem {
  sold = 0;
  constructor(
    private readonly clock: Clock,
    public startsAt = 0,
    public endsAt: number | null = null,
  ) {}

  view(): ItemView {
    const nowMs = this.clock.now();
    const status = nowMs < this.startsAt ? 'not_started' : this.endsAt !== null && nowMs >= this.endsAt ? 'ended' : 'on_sale';
    return {
      id: '42', name: 'Phone', sellerId: '7', stock: 1_000_000, available: 1_000_000 - this.sold, reserved: 0,
      sold: this.sold, perUserLimit: 1, startsAt: this.startsAt, endsAt: this.endsAt, status,
      reserveTtlMs: 60_000, slices: 1, challenge: 'none', eligibility: null,
    };
  }
}

/**
 * Time as Node's timers see it: a timer runs when the event loop's clock, read a moment
 * before, says it is due, so its callback may read Date.now() a millisecond before the timer's
 * time, and the millisecond may pass before its next reading. Every timer of a millisecond or
 * more runs that way here, over a SimulatedClock.
 */
class EarlyTimerClock implements Clock {
  private readonly time: SimulatedClock;
  /** Set while a timer runs: its first reading of the clock gives the millisecond before. */
  private lagging = false;

  constructor(startMs: number) {
    this.time = new SimulatedClock(startMs);
  }

  now(): number {
    if (!this.lagging) return this.time.now();
    this.lagging = false;
    return this.time.now() - 1;
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    return this.time.schedule(delayMs, () => {
      this.lagging = delayMs >= 1;
      try {
        callback();
      } finally {
        this.lagging = false;
      }
    });
  }

  advance(milliseconds: number): void {
    this.time.advance(milliseconds);
  }
}

function setup(startsAt = 0, endsAt: number | null = null, clock: SimulatedClock | EarlyTimerClock = new SimulatedClock(1_000_000)) {
  const transport = new RecordingTransport(clock);
  const item = new FakeItem(clock, startsAt, endsAt);
  const feed = new StockFeed<string>({ clock, transport, view: (itemId) => (itemId === '42' ? item.view() : undefined) });
  const change = (): void => {
    item.sold += 1;
    feed.changed('42');
  };
  return { clock, transport, item, feed, change };
}

describe('the stock feed', () => {
  it('sends the current figures at once on subscribe, and refuses unknown items', () => {
    const { transport, feed } = setup();
    expect(feed.add('alice', '42')).toBe(true);
    expect(transport.of('alice')).toEqual([{ atMs: 1_000_000, sold: 0, status: 'on_sale' }]);
    expect(feed.add('alice', '7')).toBe(false);
  });

  it('coalesces changes to one push per 50 ms, ending on the latest figures', () => {
    const { clock, transport, feed, change } = setup();
    feed.add('alice', '42');
    clock.advance(100);
    change(); // published at once: the topic has been quiet for more than 50 ms
    clock.advance(10);
    change();
    clock.advance(10);
    change(); // these two wait for the next tick
    expect(transport.of('alice').map((delivery) => delivery.sold)).toEqual([0, 1]);
    clock.advance(29);
    expect(transport.of('alice').map((delivery) => delivery.sold)).toEqual([0, 1]);
    clock.advance(1);
    expect(transport.of('alice')).toEqual([
      { atMs: 1_000_000, sold: 0, status: 'on_sale' },
      { atMs: 1_000_100, sold: 1, status: 'on_sale' },
      { atMs: 1_000_150, sold: 3, status: 'on_sale' },
    ]);
    clock.advance(1_000);
    expect(transport.of('alice')).toHaveLength(3);
  });

  it('keeps a new subscriber off the topic until an interval after its first push, then catches it up', () => {
    const { clock, transport, feed, change } = setup();
    feed.add('alice', '42');
    clock.advance(100);
    feed.add('bob', '42'); // bob got figures at 100
    clock.advance(20);
    change(); // published at 120; bob is too young for it
    expect(transport.of('alice').at(-1)).toEqual({ atMs: 1_000_120, sold: 1, status: 'on_sale' });
    expect(transport.of('bob')).toEqual([{ atMs: 1_000_100, sold: 0, status: 'on_sale' }]);
    clock.advance(50); // the follow-up tick: bob joins the topic and gets the figures he missed
    expect(transport.of('bob').at(-1)).toEqual({ atMs: 1_000_170, sold: 1, status: 'on_sale' });
    expect(transport.of('alice')).toHaveLength(2);
    expect(transport.topics.get(stockTopic('42'))).toEqual(new Set(['alice', 'bob']));
  });

  it('sends nothing to a parked subscriber and the latest figures once it is unparked', () => {
    const { clock, transport, feed, change } = setup();
    feed.add('alice', '42');
    feed.add('bob', '42');
    clock.advance(60);
    change();
    clock.advance(60);
    feed.park('bob');
    for (let step = 0; step < 10; step++) {
      change();
      clock.advance(60);
    }
    const bobBefore = transport.of('bob').length;
    expect(transport.of('alice').at(-1)?.sold).toBe(11);
    feed.unpark('bob');
    clock.advance(100);
    expect(transport.of('bob').length).toBe(bobBefore + 1);
    expect(transport.of('bob').at(-1)?.sold).toBe(11);
  });

  it('stops pushing to a subscriber that unsubscribed, and forgets an item nobody watches', () => {
    const { clock, transport, feed, change } = setup();
    feed.add('alice', '42');
    clock.advance(60);
    feed.remove('alice', '42');
    change();
    clock.advance(100);
    expect(transport.of('alice')).toHaveLength(1);
    expect(feed.watchedItems).toBe(0);
  });

  it('pushes the status when the sale starts and when it ends, without any stock change', () => {
    const { clock, transport, feed } = setup(1_000_500, 1_000_900);
    feed.add('alice', '42');
    clock.advance(499);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started']);
    clock.advance(1);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started', 'on_sale']);
    clock.advance(400);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started', 'on_sale', 'ended']);
  });

  it('pushes the start and the end when their timers run a millisecond before the clock reads them', () => {
    const { clock, transport, feed } = setup(1_000_500, 1_000_900, new EarlyTimerClock(1_000_000));
    feed.add('alice', '42');
    clock.advance(499);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started']);
    clock.advance(1);
    expect(transport.of('alice')).toEqual([
      { atMs: 1_000_000, sold: 0, status: 'not_started' },
      { atMs: 1_000_500, sold: 0, status: 'on_sale' },
    ]);
    clock.advance(400);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started', 'on_sale', 'ended']);
  });

  it('follows a sale window moved after the subscription: the new start and end are pushed, the old ones are not', () => {
    const { clock, transport, item, feed } = setup(1_000_500, null);
    feed.add('alice', '42');
    clock.advance(100);
    item.startsAt = 1_000_300;
    item.endsAt = 1_000_600;
    feed.changed('42'); // the engine tells its stock listeners after an amendment
    clock.advance(199);
    expect(transport.of('alice').map((delivery) => delivery.status)).toEqual(['not_started', 'not_started']);
    clock.advance(1);
    expect(transport.of('alice').map((delivery) => [delivery.atMs, delivery.status])).toEqual([
      [1_000_000, 'not_started'],
      [1_000_100, 'not_started'],
      [1_000_300, 'on_sale'],
    ]);
    clock.advance(300);
    expect(transport.of('alice').map((delivery) => [delivery.atMs, delivery.status]).slice(3)).toEqual([[1_000_600, 'ended']]);
    clock.advance(1_000);
    expect(transport.of('alice')).toHaveLength(4);
  });

  it('never pushes more than once per 50 ms, never reorders, and always ends on the latest figures', () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('change' as const) }),
      fc.record({ kind: fc.constant('wait' as const), milliseconds: fc.integer({ min: 0, max: 120 }) }),
      fc.record({ kind: fc.constant('subscribe' as const), subscriber: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('unsubscribe' as const), subscriber: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('park' as const), subscriber: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('unpark' as const), subscriber: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
        const { clock, transport, feed, item, change } = setup();
        /** Deliveries that were asked for (the push on subscribe), which the 50 ms rule does not cover. */
        const requested = new Set<Delivery>();
        const subscribed = new Set<string>();
        const parked = new Set<string>();
        for (const step of operations) {
          const subscriber = 'subscriber' in step ? `s${step.subscriber}` : '';
          switch (step.kind) {
            case 'change':
              change();
              break;
            case 'wait':
              clock.advance(step.milliseconds);
              break;
            case 'subscribe':
              if (subscribed.has(subscriber)) break;
              feed.add(subscriber, '42');
              requested.add(transport.of(subscriber).at(-1)!);
              subscribed.add(subscriber);
              break;
            case 'unsubscribe':
              feed.remove(subscriber, '42');
              subscribed.delete(subscriber);
              parked.delete(subscriber);
              break;
            case 'park':
              feed.park(subscriber);
              if (subscribed.has(subscriber)) parked.add(subscriber);
              break;
            case 'unpark':
              feed.unpark(subscriber);
              parked.delete(subscriber);
              break;
          }
        }
        clock.advance(200);
        for (const [subscriber, deliveries] of transport.received) {
          for (let index = 1; index < deliveries.length; index++) {
            const previous = deliveries[index - 1]!;
            const current = deliveries[index]!;
            if (!requested.has(current)) expect(current.atMs - previous.atMs).toBeGreaterThanOrEqual(50);
            expect(current.sold).toBeGreaterThanOrEqual(previous.sold);
          }
          if (subscribed.has(subscriber) && !parked.has(subscriber)) expect(deliveries.at(-1)?.sold).toBe(item.sold);
        }
      }),
      { numRuns: 300 },
    );
  });
});
