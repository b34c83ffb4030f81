/**
 * What each valid WebSocket request does: subscriptions go to the stock feed, challenges to the
 * challenge book, and everything that changes stock to the engine, whose promise resolves only
 * after the change committed. Each request gets exactly one reply.
 */
import { performance } from 'node:perf_hooks';
import { reject, type Rejection } from '../domain/reasons.js';
import { OutcomeUnknownError } from '../errors.js';
import type { ChallengeBook } from '../edge/challenge.js';
import {
  challengeMessage,
  orderMessage,
  ordersMessage,
  releasedMessage,
  reservedMessage,
  subscribedMessage,
  unsubscribedMessage,
  type Request,
} from '../edge/protocol.js';
import type { StockFeed } from '../edge/stockFeed.js';
import type { OrderPage, PurchaseRequest } from '../engine.js';
import { qualify, type Buyer } from '../items.js';
import type { Connection, Replies } from './connection.js';
import type { ServerContext } from './context.js';

type OrderPageReply = { readonly ok: true } & OrderPage;

export interface DispatchParts {
  readonly replies: Replies;
  readonly challenges: ChallengeBook;
  readonly feed: StockFeed<Connection>;
  /** Connections with at least one subscription: the only ones stock pushes can congest. */
  readonly watchers: Set<Connection>;
}

export class RequestDispatcher {
  private readonly replies: Replies;

  constructor(
    private readonly context: ServerContext,
    private readonly parts: DispatchParts,
  ) {
    this.replies = parts.replies;
  }

  dispatch(connection: Connection, request: Request): void {
    const { buyer } = connection;
    const { engine } = this.context;
    switch (request.type) {
      case 'subscribe':
        this.subscribe(connection, request.id, request.items);
        return;
      case 'unsubscribe':
        this.unsubscribe(connection, request.id, request.items);
        return;
      case 'challenge': {
        if (engine.definition(request.item) === undefined) {
          this.replies.refuse(connection, request.type, request.id, reject('unknown_item'));
          return;
        }
        const issued = this.parts.challenges.issue(buyer.userId, request.item);
        this.replies.succeed(connection, request.type, challengeMessage(request.id, request.item, issued));
        return;
      }
      case 'reserve':
      case 'buy': {
        const refusal = this.challengeGate(buyer, request);
        if (refusal !== null) {
          this.replies.refuse(connection, request.type, request.id, refusal);
          return;
        }
        const purchase = { itemId: request.item, quantity: request.qty, idempotencyKey: request.idempotencyKey };
        if (this.refusedFromMemory(connection, request.type, request.id, purchase)) return;
        if (request.type === 'reserve') {
          this.perform(connection, request.type, request.id, () => engine.reserve(buyer, purchase), (reservation) =>
            reservedMessage(request.id, reservation),
          );
        } else {
          this.perform(connection, request.type, request.id, () => engine.buy(buyer, purchase), (order) =>
            orderMessage(request.id, order),
          );
        }
        return;
      }
      case 'confirm':
        this.perform(
          connection,
          request.type,
          request.id,
          () => engine.confirm(buyer, request.token),
          (order) => orderMessage(request.id, order),
        );
        return;
      case 'cancel':
        this.perform(
          connection,
          request.type,
          request.id,
          () => engine.cancel(buyer, request.token),
          (release) => releasedMessage(request.id, release),
        );
        return;
      case 'orders':
        this.perform(
          connection,
          request.type,
          request.id,
          () =>
            engine.orderPage(buyer.userId, { limit: request.limit, cursor: request.cursor }).then((result): OrderPageReply | Rejection =>
              result.ok
                ? { ok: true, ...result.value }
                : reject(result.error === 'invalid' ? 'invalid' : 'unavailable', result.message),
            ),
          (result) => ordersMessage(request.id, result.orders, result.next),
        );
        return;
    }
  }

  private subscribe(connection: Connection, id: string, requested: readonly string[]): void {
    const { engine, limits } = this.context;
    const { feed } = this.parts;
    const items = [...new Set(requested)];
    const missing = items.find((itemId) => engine.item(itemId) === undefined);
    if (missing !== undefined) {
      this.replies.refuse(connection, 'subscribe', id, reject('unknown_item', `no item ${missing}`));
      return;
    }
    const added = items.filter((itemId) => !feed.isSubscribed(connection, itemId)).length;
    if (feed.subscriptionCount(connection) + added > limits.subscriptionsPerConnectionMax) {
      this.replies.refuse(
        connection,
        'subscribe',
        id,
        reject('invalid', `a connection may watch at most ${limits.subscriptionsPerConnectionMax} items`),
      );
      return;
    }
    this.replies.succeed(connection, 'subscribe', subscribedMessage(id, items));
    for (const itemId of items) feed.add(connection, itemId);
    this.parts.watchers.add(connection);
  }

  private unsubscribe(connection: Connection, id: string, requested: readonly string[]): void {
    const { feed } = this.parts;
    const items = [...new Set(requested)];
    for (const itemId of items) feed.remove(connection, itemId);
    if (feed.subscriptionCount(connection) === 0) this.parts.watchers.delete(connection);
    this.replies.succeed(connection, 'unsubscribe', unsubscribedMessage(id, items));
  }

  /**
   * The challenge filter, in front of the engine for items that have one. Requests the engine
   * will turn down from memory anyway (unknown item, blocked or ineligible user, sold out,
   * ended) skip it and get the engine's precise reason; everything else must bring the answer
   * to a fresh challenge.
   */
  private challengeGate(
    buyer: Buyer,
    request: { item: string; challengeId?: string | undefined; answer?: number | string | undefined },
  ): Rejection | null {
    const { engine } = this.context;
    const definition = engine.definition(request.item);
    if (definition === undefined || definition.challenge === 'none') return null;
    if (qualify(buyer, definition, engine.isBlocked(buyer.userId)) !== null) return null;
    const status = engine.item(request.item)?.status;
    if (status === 'sold_out' || status === 'ended') return null;
    const refusal = this.parts.challenges.redeem(buyer.userId, request.item, request.challengeId, request.answer);
    return refusal === null ? null : reject(refusal);
  }

  /**
   * Answers at once a `buy` or `reserve` the engine refuses from memory (most of a flash sale's
   * crowd, once the item sold out): no promise, no closure, no microtask. False when the
   * request must go on to the engine.
   */
  private refusedFromMemory(connection: Connection, type: 'buy' | 'reserve', id: string, purchase: PurchaseRequest): boolean {
    const { engine, metrics } = this.context;
    const arrivedAt = performance.now();
    let refusal: Rejection | null;
    try {
      refusal = engine.refusalFromMemory(connection.buyer, purchase);
    } catch (error) {
      this.engineThrew(connection, type, id, error);
      return true;
    }
    if (refusal === null) return false;
    this.replies.refuse(connection, type, id, refusal);
    metrics.acknowledged(type, performance.now() - arrivedAt);
    return true;
  }

  /** The engine threw instead of answering (closed, or a bug): the request is answered, nothing was changed. */
  private engineThrew(connection: Connection, type: string, id: string, error: unknown): void {
    this.context.logger.error({ err: error, type }, 'the engine refused a request');
    this.replies.refuse(connection, type, id, reject('unavailable'));
  }

  /** Hands a request to the engine and replies when its promise settles. */
  private perform<T extends { readonly ok: true }>(
    connection: Connection,
    type: string,
    id: string,
    start: () => Promise<T | Rejection>,
    success: (value: T) => string,
  ): void {
    const { logger, inFlight, metrics } = this.context;
    const arrivedAt = performance.now();
    let outcome: Promise<T | Rejection>;
    try {
      outcome = start();
    } catch (error) {
      this.engineThrew(connection, type, id, error);
      return;
    }
    inFlight.started();
    outcome.then(
      (result) => {
        if (result.ok) this.replies.succeed(connection, type, success(result));
        else this.replies.refuse(connection, type, id, result);
        if (type !== 'orders') metrics.acknowledged(type, performance.now() - arrivedAt);
        inFlight.settled();
      },
      (error: unknown) => {
        logger.error({ err: error, type }, 'a request failed');
        // A change that may have committed gets no reply rather than a false one; the client
        // learns its outcome by retrying with the same idempotency key.
        if (!(error instanceof OutcomeUnknownError)) {
          this.replies.refuse(connection, type, id, reject('unavailable', 'storage cannot answer now; nothing was changed'));
        }
        inFlight.settled();
      },
    );
  }
}
