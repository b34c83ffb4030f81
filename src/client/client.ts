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
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';
import { ClientClosedError, OutcomeUnknownError, QueueFullError, RequestTimeoutError } from './errors.js';
import {
  changesState,
  successTypes,
  type ChallengeAnswer,
  type Outcome,
  type Rejected,
  type ReplyOf,
  type Request,
  type RequestType,
  type StockUpdate,
} from './messages.js';
import {
  ReconnectingSocket,
  type ConnectionChange,
  type ConnectionState,
  type TokenProvider,
  type WebSocketConstructor,
} from './reconnectingSocket.js';
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

type Settle = (outcome: Outcome<ReplyOf[RequestType]>) => void;

/** A request from the call until its answer: possibly several attempts, over several sockets. */
interface Pending {
  readonly type: RequestType;
  readonly request: Request;
  readonly timeoutMs: number;
  readonly resolve: Settle;
  readonly reject: (error: Error) => void;
  /** The id of the attempt waiting for its reply; null while queued or waiting to retry. */
  wireId: string | null;
  retries: number;
  /** A state-changing attempt went out and its answer was lost: it may have taken effect. */
  inDoubt: boolean;
  deadline: ReturnType<typeof setTimeout> | null;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

const defaults = {
  requestTimeoutMs: 10_000,
  reconnect: { delayBaseMs: 250, delayMaxMs: 10_000 },
  retry: { delayBaseMs: 100, delayMaxMs: 2_000, retriesMax: 5 },
  queuedRequestsMax: 1_000,
  stableConnectionMs: 5_000,
};

/** Answers that promise nothing was changed, so the same request may go again. */
const retriedReasons: ReadonlySet<string> = new Set(['unavailable', 'rate_limited']);

export class SeckillClient {
  private readonly connection: ReconnectingSocket;
  private readonly requestTimeoutMs: number;
  private readonly retry: BackoffPolicy & { readonly retriesMax: number };
  private readonly idempotencyKeys: boolean;
  private readonly queuedRequestsMax: number;
  private readonly random: () => number;
  /** Requests waiting for a connection, in the order they were made. */
  private queue: Pending[] = [];
  private readonly awaiting = new Map<string, Pending>();
  private readonly all = new Set<Pending>();
  /** Items subscribed to, renewed on every reconnect. */
  private readonly subscriptions = new Set<string>();
  private readonly stockListeners = new Set<(update: StockUpdate) => void>();
  private readonly streams = new Set<StockStream>();
  /** The latest figures of each subscribed item, so a stream opened after a push starts from them. */
  private readonly latest = new Map<string, StockUpdate>();
  private readonly connectionListeners = new Set<(change: ConnectionChange) => void>();
  private lastState: ConnectionState = 'connecting';
  private nextWireId = 0;
  private closed = false;

  constructor(options: SeckillClientOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? defaults.requestTimeoutMs;
    this.retry = { ...defaults.retry, ...options.retry };
    this.idempotencyKeys = options.idempotencyKeys ?? true;
    this.queuedRequestsMax = options.queuedRequestsMax ?? defaults.queuedRequestsMax;
    this.random = options.random ?? Math.random;
    this.connection = new ReconnectingSocket({
      url: options.url,
      token: options.token,
      backoff: { ...defaults.reconnect, ...options.reconnect },
      stableConnectionMs: defaults.stableConnectionMs,
      WebSocket: options.WebSocket,
      random: this.random,
      onOpen: () => this.opened(),
      onText: (text) => this.received(text),
      onLost: () => this.lost(),
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
    for (const pending of [...this.all]) {
      this.fail(pending, this.mayHaveTakenEffect(pending) ? new OutcomeUnknownError(pending.type, 'client_closed') : new ClientClosedError(pending.type));
    }
    this.connection.close();
    this.stockListeners.clear();
    for (const stream of [...this.streams]) stream.end();
  }

  // ---------------------------------------------------------------- the machinery

  private request<Type extends RequestType>(request: Request & { type: Type }, options?: RequestOptions): Promise<Outcome<ReplyOf[Type]>> {
    const type = request.type;
    if (this.closed) return Promise.reject(new ClientClosedError(type));
    const timeoutMs = options?.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        type,
        request,
        timeoutMs,
        resolve: resolve as Settle,
        reject,
        wireId: null,
        retries: 0,
        inDoubt: false,
        deadline: null,
        retryTimer: null,
      };
      if (!this.connection.isOpen && this.queue.length >= this.queuedRequestsMax) {
        reject(new QueueFullError(type, this.queuedRequestsMax));
        return;
      }
      this.all.add(pending);
      pending.deadline = setTimeout(() => this.timedOut(pending), timeoutMs);
      this.sendOrQueue(pending);
    });
  }

  private sendOrQueue(pending: Pending): void {
    const wireId = `r${(this.nextWireId += 1).toString(36)}`;
    if (this.connection.send(JSON.stringify({ ...pending.request, id: wireId }))) {
      pending.wireId = wireId;
      this.awaiting.set(wireId, pending);
    } else {
      this.queue.push(pending);
    }
  }

  private opened(): void {
    // Renew the subscriptions first, so that a queued (un)subscribe is applied after them.
    if (this.subscriptions.size > 0) void this.renewSubscriptions();
    const queued = this.queue;
    this.queue = [];
    for (const pending of queued) this.sendOrQueue(pending);
  }

  private async renewSubscriptions(): Promise<void> {
    try {
      await this.subscribe([...this.subscriptions]);
    } catch {
      // Closed or timed out: the next reconnect renews them again.
    }
  }

  private lost(): void {
    for (const [wireId, pending] of [...this.awaiting]) {
      this.awaiting.delete(wireId);
      pending.wireId = null;
      if (!changesState[pending.type]) {
        this.queue.push(pending);
      } else if (this.idempotencyKeys && (pending.type === 'buy' || pending.type === 'reserve')) {
        pending.inDoubt = true;
        this.queue.push(pending);
      } else {
        this.fail(pending, new OutcomeUnknownError(pending.type, 'connection_lost'));
      }
    }
  }

  private received(text: string): void {
    let message: { type?: unknown; id?: unknown; reason?: unknown; message?: unknown };
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
    if (typeof message.id !== 'string') return;
    const pending = this.awaiting.get(message.id);
    if (pending === undefined) return;
    this.awaiting.delete(message.id);
    pending.wireId = null;
    if (message.type === 'rejected') {
      this.rejected(pending, message as unknown as Rejected);
      return;
    }
    const { id: _id, ...reply } = message;
    if (reply.type !== successTypes[pending.type]) {
      this.fail(pending, new Error(`unexpected reply ${String(reply.type)} to ${pending.type}`));
      return;
    }
    if (pending.request.type === 'subscribe') for (const item of pending.request.items) this.subscriptions.add(item);
    if (pending.request.type === 'unsubscribe') {
      for (const item of pending.request.items) {
        this.subscriptions.delete(item);
        this.latest.delete(item);
      }
    }
    this.settle(pending, { ok: true, ...reply } as Outcome<ReplyOf[RequestType]>);
  }

  private rejected(pending: Pending, rejection: Rejected): void {
    if (retriedReasons.has(rejection.reason) && pending.retries < this.retry.retriesMax) {
      const delayMs = backoffDelayMs(this.retry, pending.retries, this.random);
      pending.retries += 1;
      pending.retryTimer = setTimeout(() => {
        pending.retryTimer = null;
        this.sendOrQueue(pending);
      }, delayMs);
      return;
    }
    // An earlier attempt whose answer was lost may have committed; "nothing changed" only
    // speaks for this attempt, so it cannot be passed on as the answer.
    if (pending.inDoubt && retriedReasons.has(rejection.reason)) {
      this.fail(pending, new OutcomeUnknownError(pending.type, 'connection_lost'));
      return;
    }
    const outcome: Rejected =
      rejection.message === undefined
        ? { ok: false, reason: rejection.reason }
        : { ok: false, reason: rejection.reason, message: rejection.message };
    this.settle(pending, outcome);
  }

  private timedOut(pending: Pending): void {
    pending.deadline = null;
    this.fail(
      pending,
      this.mayHaveTakenEffect(pending) ? new OutcomeUnknownError(pending.type, 'timeout') : new RequestTimeoutError(pending.type, pending.timeoutMs),
    );
  }

  /** True when some attempt of a state-changing request may have reached the server unanswered. */
  private mayHaveTakenEffect(pending: Pending): boolean {
    return pending.inDoubt || (changesState[pending.type] && pending.wireId !== null);
  }

  private settle(pending: Pending, outcome: Outcome<ReplyOf[RequestType]>): void {
    this.forget(pending);
    pending.resolve(outcome);
  }

  private fail(pending: Pending, error: Error): void {
    this.forget(pending);
    pending.reject(error);
  }

  private forget(pending: Pending): void {
    this.all.delete(pending);
    if (pending.deadline !== null) clearTimeout(pending.deadline);
    if (pending.retryTimer !== null) clearTimeout(pending.retryTimer);
    if (pending.wireId !== null) this.awaiting.delete(pending.wireId);
    pending.wireId = null;
    const queued = this.queue.indexOf(pending);
    if (queued >= 0) this.queue.splice(queued, 1);
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
