/**
 * Stock pushes: the item query cache's live side. Every change of an item's committed figures
 * reaches its subscribers through one pub/sub topic per item, coalesced.
 *
 * What it promises, per item and per connection:
 * - On subscribe, the connection is sent the current figures at once.
 * - After that it receives at most one push per `intervalMs` (50 ms): changes in between are
 *   merged into the next push, never reordered (every push carries the figures of its moment,
 *   and later pushes carry later figures).
 * - The last push it receives carries the latest figures, once things settle.
 * - A congested connection (see `park`) is sent nothing more; when it catches up (`unpark`) it
 *   is sent the latest figures, so for a slow reader only the latest matters.
 *
 * How: a topic is published to at most once per interval (a "tick"). A connection that has just
 * been sent figures directly (on subscribe, or when it is unparked) is a "joiner": it is not on
 * the topic yet, because the next tick may be less than an interval away. At the first tick at
 * least an interval after its direct send, it joins the topic, and if that tick publishes
 * nothing it is sent the latest figures directly, if it has not seen them. A joiner that misses
 * a tick because it is too young gets a follow-up tick an interval later, when every such
 * joiner is old enough, so every connection ends on the topic after at most two ticks.
 *
 * The sale window turns an item's status without any stock change; a timer per watched item
 * pushes the new status when the sale starts and when it ends, and follows the window when an
 * administrator moves it.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { ItemView } from '../items.js';
import { stockMessage } from './protocol.js';

export interface StockTransport<Subscriber> {
  /** Sends to every subscriber of the topic; the transport may skip congested ones. */
  publish(topic: string, message: string): void;
  subscribe(subscriber: Subscriber, topic: string): void;
  unsubscribe(subscriber: Subscriber, topic: string): void;
  send(subscriber: Subscriber, message: string): void;
}

export interface StockFeedOptions<Subscriber> {
  readonly clock: Clock;
  readonly transport: StockTransport<Subscriber>;
  /** The item's current committed figures, from memory. */
  readonly view: (itemId: string) => ItemView | undefined;
  readonly intervalMs?: number;
  /** Told about every push sent: `published` to a topic or `sent` to one subscriber. */
  readonly onPush?: (kind: 'published' | 'sent') => void;
}

export const stockPushIntervalMs = 50;
/** setTimeout cannot wait longer than this; a sale that starts later is waited for in steps. */
const timerDelayMaxMs = 2_147_483_647;

interface Joiner {
  /** When this subscriber was last sent figures outside the topic (or may have been, on the topic). */
  readonly sentAtMs: number;
  /** The item version those figures had; -1 when unknown. */
  readonly sentVersion: number;
}

interface ItemFeed {
  readonly itemId: string;
  readonly topic: string;
  /** Counts the changes of the item's figures or status. */
  version: number;
  publishedVersion: number;
  lastTickAtMs: number;
  tickTimer: { readonly atMs: number; readonly handle: TimerHandle } | null;
  /** Armed for the next bound of the sale's window, if it has one ahead. */
  boundaryTimer: { readonly atMs: number; readonly handle: TimerHandle } | null;
  readonly members: Set<unknown>;
  readonly joiners: Map<unknown, Joiner>;
}

interface SubscriberState {
  /** Subscribed items, each with the time of its last direct send. */
  readonly items: Map<string, number>;
  parked: boolean;
}

export function stockTopic(itemId: string): string {
  return `stock/${itemId}`;
}

export class StockFeed<Subscriber> {
  private readonly feeds = new Map<string, ItemFeed>();
  private readonly subscribers = new Map<Subscriber, SubscriberState>();
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly transport: StockTransport<Subscriber>;

  constructor(private readonly options: StockFeedOptions<Subscriber>) {
    this.intervalMs = options.intervalMs ?? stockPushIntervalMs;
    this.clock = options.clock;
    this.transport = options.transport;
  }

  /** Items with at least one subscriber. */
  get watchedItems(): number {
    return this.feeds.size;
  }

  subscriptionCount(subscriber: Subscriber): number {
    return this.subscribers.get(subscriber)?.items.size ?? 0;
  }

  isSubscribed(subscriber: Subscriber, itemId: string): boolean {
    return this.subscribers.get(subscriber)?.items.has(itemId) === true;
  }

  isParked(subscriber: Subscriber): boolean {
    return this.subscribers.get(subscriber)?.parked === true;
  }

  /** Subscribes and sends the current figures at once. Returns false for an unknown item. */
  add(subscriber: Subscriber, itemId: string): boolean {
    const view = this.options.view(itemId);
    if (view === undefined) return false;
    const feed = this.feedFor(itemId);
    let state = this.subscribers.get(subscriber);
    if (state === undefined) {
      state = { items: new Map(), parked: false };
      this.subscribers.set(subscriber, state);
    }
    if (state.items.has(itemId) && !state.parked && !feed.joiners.has(subscriber)) {
      this.transport.unsubscribe(subscriber, feed.topic);
    }
    const nowMs = this.clock.now();
    state.items.set(itemId, nowMs);
    feed.members.add(subscriber);
    this.send(subscriber, stockMessage(view));
    if (!state.parked) feed.joiners.set(subscriber, { sentAtMs: nowMs, sentVersion: feed.version });
    return true;
  }

  remove(subscriber: Subscriber, itemId: string): void {
    const state = this.subscribers.get(subscriber);
    const feed = this.feeds.get(itemId);
    if (state === undefined || feed === undefined || !state.items.has(itemId)) return;
    if (!state.parked && !feed.joiners.has(subscriber)) this.transport.unsubscribe(subscriber, feed.topic);
    this.leave(subscriber, state, feed);
    if (state.items.size === 0) this.subscribers.delete(subscriber);
  }

  /** Forgets a closed subscriber; the transport has dropped its topics already. */
  forget(subscriber: Subscriber): void {
    const state = this.subscribers.get(subscriber);
    if (state === undefined) return;
    for (const itemId of [...state.items.keys()]) {
      const feed = this.feeds.get(itemId);
      if (feed !== undefined) this.leave(subscriber, state, feed);
    }
    this.subscribers.delete(subscriber);
  }

  /** Stops all pushes to a congested subscriber; it keeps its subscriptions. */
  park(subscriber: Subscriber): void {
    const state = this.subscribers.get(subscriber);
    if (state === undefined || state.parked) return;
    state.parked = true;
    for (const itemId of state.items.keys()) {
      const feed = this.feeds.get(itemId)!;
      if (!feed.joiners.delete(subscriber)) this.transport.unsubscribe(subscriber, feed.topic);
    }
  }

  /** Resumes pushes to a subscriber that has caught up; it is sent the latest figures within an interval. */
  unpark(subscriber: Subscriber): void {
    const state = this.subscribers.get(subscriber);
    if (state === undefined || !state.parked) return;
    state.parked = false;
    for (const [itemId, lastSentAtMs] of state.items) {
      const feed = this.feeds.get(itemId)!;
      feed.joiners.set(subscriber, { sentAtMs: Math.max(feed.lastTickAtMs, lastSentAtMs), sentVersion: -1 });
      this.scheduleTick(feed, lastSentAtMs + this.intervalMs);
    }
  }

  /** The item's committed figures or its sale window changed (the engine's `onStock`). */
  changed(itemId: string): void {
    const feed = this.feeds.get(itemId);
    if (feed === undefined) return;
    feed.version += 1;
    // An administrator may have moved the window (src/engine/amend.ts): the timer follows it.
    this.scheduleBoundary(feed);
    this.scheduleTick(feed, Number.NEGATIVE_INFINITY);
  }

  /** Cancels every timer; the feed sends nothing afterwards. */
  stop(): void {
    for (const feed of this.feeds.values()) this.cancelTimers(feed);
    this.feeds.clear();
    this.subscribers.clear();
  }

  private feedFor(itemId: string): ItemFeed {
    let feed = this.feeds.get(itemId);
    if (feed === undefined) {
      feed = {
        itemId,
        topic: stockTopic(itemId),
        version: 0,
        publishedVersion: 0,
        lastTickAtMs: Number.NEGATIVE_INFINITY,
        tickTimer: null,
        boundaryTimer: null,
        members: new Set(),
        joiners: new Map(),
      };
      this.feeds.set(itemId, feed);
      this.scheduleBoundary(feed);
    }
    return feed;
  }

  private leave(subscriber: Subscriber, state: SubscriberState, feed: ItemFeed): void {
    feed.joiners.delete(subscriber);
    feed.members.delete(subscriber);
    state.items.delete(feed.itemId);
    if (feed.members.size === 0) {
      this.cancelTimers(feed);
      this.feeds.delete(feed.itemId);
    }
  }

  private cancelTimers(feed: ItemFeed): void {
    feed.tickTimer?.handle.cancel();
    feed.tickTimer = null;
    feed.boundaryTimer?.handle.cancel();
    feed.boundaryTimer = null;
  }

  /** Arranges a tick no sooner than an interval after the last one, nor before `notBeforeMs`. */
  private scheduleTick(feed: ItemFeed, notBeforeMs: number): void {
    const dueAtMs = Math.max(feed.lastTickAtMs + this.intervalMs, notBeforeMs);
    if (feed.tickTimer !== null) {
      if (feed.tickTimer.atMs <= dueAtMs) return;
      feed.tickTimer.handle.cancel();
      feed.tickTimer = null;
    }
    const nowMs = this.clock.now();
    if (dueAtMs <= nowMs) {
      this.tick(feed);
      return;
    }
    const handle = this.clock.schedule(dueAtMs - nowMs, () => {
      feed.tickTimer = null;
      if (this.feeds.get(feed.itemId) === feed) this.tick(feed);
    });
    feed.tickTimer = { atMs: dueAtMs, handle };
  }

  private tick(feed: ItemFeed): void {
    const view = this.options.view(feed.itemId);
    if (view === undefined) return;
    const nowMs = this.clock.now();
    const changed = feed.version > feed.publishedVersion;
    let message: string | undefined;
    let sent = false;
    let youngStaleDueAtMs = Number.POSITIVE_INFINITY;
    for (const [member, joiner] of feed.joiners) {
      const subscriber = member as Subscriber;
      if (nowMs - joiner.sentAtMs >= this.intervalMs) {
        feed.joiners.delete(subscriber);
        this.transport.subscribe(subscriber, feed.topic);
        if (!changed && joiner.sentVersion < feed.version) {
          message ??= stockMessage(view);
          this.send(subscriber, message);
          sent = true;
        }
      } else if (joiner.sentVersion < feed.version) {
        youngStaleDueAtMs = Math.min(youngStaleDueAtMs, joiner.sentAtMs + this.intervalMs);
      }
    }
    if (changed) {
      message ??= stockMessage(view);
      this.transport.publish(feed.topic, message);
      this.options.onPush?.('published');
      feed.publishedVersion = feed.version;
      sent = true;
    }
    if (sent) feed.lastTickAtMs = nowMs;
    if (youngStaleDueAtMs !== Number.POSITIVE_INFINITY) this.scheduleTick(feed, youngStaleDueAtMs);
  }

  private send(subscriber: Subscriber, message: string): void {
    this.transport.send(subscriber, message);
    this.options.onPush?.('sent');
  }

  /**
   * Pushes the status change when the sale starts and when it ends: arms the timer for the next
   * bound of the item's window, unless it is armed for it already.
   */
  private scheduleBoundary(feed: ItemFeed): void {
    const view = this.options.view(feed.itemId);
    if (view === undefined) return;
    const nowMs = this.clock.now();
    const boundaryMs =
      nowMs < view.startsAt ? view.startsAt : view.endsAt !== null && nowMs < view.endsAt ? view.endsAt : null;
    if (feed.boundaryTimer !== null && feed.boundaryTimer.atMs === boundaryMs) return;
    feed.boundaryTimer?.handle.cancel();
    feed.boundaryTimer = null;
    if (boundaryMs !== null) this.armBoundary(feed, boundaryMs);
  }

  /**
   * Waits for one boundary. Node runs a timer when the event loop's clock, read a moment
   * before, says it is due, so the callback may read the clock a millisecond before the
   * boundary, and the millisecond may pass before its next reading: the timer then waits again
   * for the same boundary. Finding the next boundary from a fresh reading instead skipped the
   * start in that case, and a buyer waiting for the sale was never told it began (about one
   * subscription in 400 near a start, `test/clientExample.e2e.test.ts`).
   */
  private armBoundary(feed: ItemFeed, boundaryMs: number): void {
    const handle = this.clock.schedule(Math.min(boundaryMs - this.clock.now(), timerDelayMaxMs), () => {
      feed.boundaryTimer = null;
      if (this.feeds.get(feed.itemId) !== feed) return;
      if (this.clock.now() < boundaryMs) {
        this.armBoundary(feed, boundaryMs);
        return;
      }
      // Pushes the new status, and arms the timer for the next bound.
      this.changed(feed.itemId);
    });
    feed.boundaryTimer = { atMs: boundaryMs, handle };
  }
}
