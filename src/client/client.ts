/**
 * SeckillClient: a buyer's connection to the sale, for shops' front ends (browsers) and Node.
 *
 * What it promises:
 * - Every request is answered with the server's answer, or fails with an error that says what
 *   is known about its effect. An answer is never invented: a `buy`, `reserve`, `confirm` or
 *   `cancel` whose answer could not be learned fails with `OutcomeUnknownError`.
 * - Answers `unavailable` and `rate_limited` (the server changed nothing) are retried with
 *   jittered exponential backoff, within the request's timeout, before the client gives up
 *   and returns the last answer.
 * - A `buy` or `reserve` carries one idempotency key for its whole life, across retries and
 *   reconnects, so the server answers a repeat with the first outcome rather than a second
 *   order. When its answer was lost with a dropped connection, it is sent again after the
 *   reconnect (with `idempotencyKeys: false`, for a server that ignores the key, it fails with
 *   `OutcomeUnknownError` instead). `confirm` and `cancel` have no key: a lost answer to them
 *   cannot be learned again, so they fail with `OutcomeUnknownError`.
 * - Requests that change nothing (subscribe, unsubscribe, challenge, orders) are simply sent
 *   again after a reconnect.
 * - Subscriptions are renewed on every reconnect, before any queued request is sent, and the
 *   token provider is asked for a fresh token before every connect.
 */
import type { BackoffPolicy } from './backoff.js';
import { ClientClosedError } from './errors.js';
import type { ChallengeAnswer, Outcome, ReplyOf, Request, RequestType, StockUpdate } from './messages.js';
import {
  ReconnectingSocket,
  type ConnectionChange,
  type ConnectionState,
  type TokenProvider,
  type WebSocketConstructor,
} from './reconnectingSocket.js';
import { RequestBook } from './requestBook.js';
import { StockStream } from './stockStream.js';

export interface SeckillClientOptions {
  /** The server's WebSocket address, such as `wss://sale.example.com/ws`; the token is added to it. */
  readonly url: string;
  /** A user JWT, or a function returning one (called again before every reconnect, so it can refresh). */
  readonly token: TokenProvider;
  /** How long a request may take, retries and reconnects included. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Waits between reconnects. Default 250 ms doubling up to 10 s, jittered. */
  readonly reconnect?: Partial<BackoffPolicy>;
  /** Retries of `unavailable` and `rate_limited`: how many, and the waits. Default 5, 100 ms doubling up to 2 s. */
  readonly retry?: Partial<BackoffPolicy> & { readonly retriesMax?: number };
  /**
   * The server honours `idempotencyKey` on `buy` and `reserve` (this server does). Set false for
   * one that does not: a purchase whose answer was lost then fails with OutcomeUnknownError
   * instead of being sent again. Default true.
   */
  readonly idempotencyKeys?: boolean;
  /** Requests that may wait for a connection at once; more fail with QueueFullError. Default 1,000. */
  readonly queuedRequestsMax?: number;
  /** A WebSocket class to use instead of the platform's (or `ws` in Node 20). */
  readonly WebSocket?: WebSocketConstructor;
  /** A source of randomness for the jitter, in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export interface RequestOptions {
  /** This request's timeout, instead of the client's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

export interface PurchaseOptions extends RequestOptions, ChallengeAnswer {
  /** The key that makes repeats of this purchase return its first outcome; one is made when absent (1–64 characters). */
  readonly idempotencyKey?: string;
}

const defaults = {
  requestTimeoutMs: 10_000,
  reconnect: { delayBaseMs: 250, delayMaxMs: 10_000 },
  retry: { delayBaseMs: 100, delayMaxMs: 2_000, retriesMax: 5 },
  queuedRequestsMax: 1_000,
  stableConnectionMs: 5_000,
};

export class SeckillClient {
  private readonly connection: ReconnectingSocket;
  private readonly requests: RequestBook;
  private readonly requestTimeoutMs: number;
  /** Items subscribed to, renewed on every reconnect. */
  private readonly subscriptions = new Set<string>();
  private readonly stockListeners = new Set<(update: StockUpdate) => void>();
  private readonly streams = new Set<StockStream>();
  /** The latest figures of each subscribed item, so a stream opened after a push starts from them. */
  private readonly latest = new Map<string, StockUpdate>();
  private readonly connectionListeners = new Set<(change: ConnectionChange) => void>();
  private lastState: ConnectionState = 'connecting';
  private closed = false;

  constructor(options: SeckillClientOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? defaults.requestTimeoutMs;
    const random = options.random ?? Math.random;
    this.requests = new RequestBook({
      send: (text) => this.connection.send(text),
      retry: { ...defaults.retry, ...options.retry },
      idempotencyKeys: options.idempotencyKeys ?? true,
      queuedRequestsMax: options.queuedRequestsMax ?? defaults.queuedRequestsMax,
      random,
      onSuccess: (request) => this.succeeded(request),
    });
    this.connection = new ReconnectingSocket({
      url: options.url,
      token: options.token,
      backoff: { ...defaults.reconnect, ...options.reconnect },
      stableConnectionMs: defaults.stableConnectionMs,
      WebSocket: options.WebSocket,
      random,
      onOpen: () => this.opened(),
      onText: (text) => this.received(text),
      onLost: () => this.requests.lost(),
      onChange: (change) => {
        this.lastState = change.state;
        for (const listener of this.connectionListeners) listener(change);
      },
    });
  }

  /** `connecting`, `open`, `waiting` (to reconnect) or `closed`. */
  get state(): ConnectionState {
    return this.lastState;
  }

  // ---------------------------------------------------------------- requests

  /** Watches items: the answer is `subscribed`, then `stock` pushes follow (see `onStock`, `stockUpdates`). */
  subscribe(items: readonly string[], options?: RequestOptions): Promise<Outcome<ReplyOf['subscribe']>> {
    return this.request({ type: 'subscribe', items: [...items] }, options);
  }

  unsubscribe(items: readonly string[], options?: RequestOptions): Promise<Outcome<ReplyOf['unsubscribe']>> {
    return this.request({ type: 'unsubscribe', items: [...items] }, options);
  }

  /** A question to answer in the next `reserve` or `buy` of an item that has a challenge. */
  challenge(item: string, options?: RequestOptions): Promise<Outcome<ReplyOf['challenge']>> {
    return this.request({ type: 'challenge', item }, options);
  }

  /** Takes `qty` units off sale for this buyer until `confirm`, `cancel` or the reservation's expiry. */
  reserve(item: string, qty: number, options: PurchaseOptions = {}): Promise<Outcome<ReplyOf['reserve']>> {
    return this.request({ type: 'reserve', item, qty, ...purchaseFields(options) }, options);
  }

  /** Turns a reservation into an order. */
  confirm(token: string, options?: RequestOptions): Promise<Outcome<ReplyOf['confirm']>> {
    return this.request({ type: 'confirm', token }, options);
  }

  /** Gives a reservation back; its stock goes back on sale. */
  cancel(token: string, options?: RequestOptions): Promise<Outcome<ReplyOf['cancel']>> {
    return this.request({ type: 'cancel', token }, options);
  }

  /** A reserve and a confirm in one step. */
  buy(item: string, qty: number, options: PurchaseOptions = {}): Promise<Outcome<ReplyOf['buy']>> {
    return this.request({ type: 'buy', item, qty, ...purchaseFields(options) }, options);
  }

  /** This buyer's orders, newest first. */
  orders(options?: RequestOptions): Promise<Outcome<ReplyOf['orders']>> {
    return this.request({ type: 'orders' }, options);
  }

  // ---------------------------------------------------------------- pushes and events

  /** Calls `listener` with every stock push; returns the function that stops it. */
  onStock(listener: (update: StockUpdate) => void): () => void {
    this.stockListeners.add(listener);
    return () => this.stockListeners.delete(listener);
  }

  /**
   * Stock pushes as an async iterator, of the given items or of all. It starts with the latest
   * figures already received for them (the push that follows `subscribed` may arrive before the
   * caller gets to open the iterator). A slow reader gets each item's latest figures, not
   * every push. Ends on `break`, or when the client closes.
   */
  stockUpdates(items?: readonly string[]): AsyncIterableIterator<StockUpdate> {
    const wanted = items === undefined ? null : new Set(items);
    const stream: StockStream = new StockStream(
      (update) => wanted === null || wanted.has(update.item),
      () => this.streams.delete(stream),
    );
    this.streams.add(stream);
    for (const update of this.latest.values()) stream.push(update);
    if (this.closed) stream.end();
    return stream;
  }

  /** Calls `listener` on every change of the connection; returns the function that stops it. */
  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  /**
   * Closes the connection for good. Requests not answered yet fail: with OutcomeUnknownError
   * where they may have taken effect, with ClientClosedError where they did not.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.requests.closeAll();
    this.connection.close();
    this.stockListeners.clear();
    for (const stream of [...this.streams]) stream.end();
  }

  // ---------------------------------------------------------------- the machinery

  private request<Type extends RequestType>(request: Request & { type: Type }, options?: RequestOptions): Promise<Outcome<ReplyOf[Type]>> {
    if (this.closed) return Promise.reject(new ClientClosedError(request.type));
    return this.requests.request<Type>(request, options?.timeoutMs ?? this.requestTimeoutMs, this.connection.isOpen);
  }

  private opened(): void {
    // Renew the subscriptions first, so that a queued (un)subscribe is applied after them.
    if (this.subscriptions.size > 0) void this.renewSubscriptions();
    this.requests.opened();
  }

  private async renewSubscriptions(): Promise<void> {
    try {
      await this.subscribe([...this.subscriptions]);
    } catch {
      // Closed or timed out: the next reconnect renews them again.
    }
  }

  private received(text: string): void {
    let message: { type?: unknown; id?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (message.type === 'stock') {
      const update = message as unknown as StockUpdate;
      if (this.subscriptions.has(update.item)) this.latest.set(update.item, update);
      for (const listener of [...this.stockListeners]) listener(update);
      for (const stream of this.streams) stream.push(update);
      return;
    }
    if (typeof message.id === 'string') this.requests.answered(message as { type?: unknown; id: string });
  }

  /** Keeps the subscriptions to renew, as each (un)subscribe succeeds. */
  private succeeded(request: Request): void {
    if (request.type === 'subscribe') for (const item of request.items) this.subscriptions.add(item);
    if (request.type === 'unsubscribe') {
      for (const item of request.items) {
        this.subscriptions.delete(item);
        this.latest.delete(item);
      }
    }
  }
}

function purchaseFields(options: PurchaseOptions): { idempotencyKey: string; challengeId?: string; answer?: number | string } {
  const fields: { idempotencyKey: string; challengeId?: string; answer?: number | string } = {
    idempotencyKey: options.idempotencyKey ?? randomKey(),
  };
  if (options.challengeId !== undefined) fields.challengeId = options.challengeId;
  if (options.answer !== undefined) fields.answer = options.answer;
  return fields;
}

/** 32 hex digits from the platform's secure random source (present in browsers and Node 20). */
function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
