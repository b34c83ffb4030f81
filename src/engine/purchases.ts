/**
 * Buying: `reserve`, `confirm`, `cancel` and `buy`, each routed to its slice after the checks
 * that need no hop (the item, the buyer's qualification, the window, stock at all).
 *
 * A `reserve` or `buy` may carry the client's idempotency key. A retry with the same key by
 * the same user is answered with what the first request came to (the same reservation, the
 * same order), never a second one or `limit_exceeded`. The slice owns that memory (see
 * `SliceState.requests`), so a keyed request the engine would refuse from memory goes on to its
 * slice, which answers a retry with the original and refuses a new request with the engine's
 * reason; unless the slice can tell at once that the request is new (an item of one slice, in
 * this thread, where no request of this user under the key has been decided or waits to be):
 * then the engine gives that same refusal from memory. A flash sale's crowd sends keys (the
 * client library does by default), so after the sell-out most of it is answered so.
 */
import type { SliceHandle, SliceOutcome } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import { reject, type Rejection, type RejectionReason } from '../domain/reasons.js';
import { EngineClosedError, OutcomeUnknownError } from '../errors.js';
import type { OrderService } from '../orders/orderService.js';
import { qualify, sliceIndexFor, type Buyer } from '../items.js';
import type { TokenSigner } from '../tokens.js';
import { allServing, availableOf, type ItemRuntime } from './itemRuntime.js';
import type { Transfers } from './transfers.js';
import { isIdempotencyKey, type Order, type OrderView, type PurchaseRequest, type Release, type Reservation } from './types.js';

export interface PurchaseContext {
  readonly items: ReadonlyMap<string, ItemRuntime>;
  readonly blocked: ReadonlySet<string>;
  readonly clock: Clock;
  /** Order ids (leased ticks), and the memory of acknowledged orders that reads see at once. */
  readonly orderService: OrderService;
  readonly log: (level: 'error', message: string, detail?: unknown) => void;
  readonly tokens: TokenSigner;
  readonly transfers: Transfers;
  /**
   * The engine, read for whether it is closed. An object with a getter, not a closure made per
   * engine: every purchase asks, and V8 compiles that call for the one function it has seen, so a
   * closure of the rehearsal's engine (src/server/rehearsal.ts) made the real engine's first
   * buyers throw the compiled purchase path away ("wrong call target", `--trace-deopt`).
   */
  readonly engine: { readonly isClosed: boolean };
}

interface Routed {
  readonly ok: true;
  readonly item: ItemRuntime;
  readonly slice: SliceHandle;
  readonly sliceIndex: number;
  /** Set on a keyed request the engine would refuse: the slice refuses it unless it is a retry. */
  readonly refusal: RejectionReason | undefined;
}

export class Purchases {
  constructor(private readonly context: PurchaseContext) {}

  reserve(buyer: Buyer, request: PurchaseRequest): Promise<Reservation | Rejection> {
    const routed = this.route(buyer, request);
    if (!routed.ok) return Promise.resolve(routed);
    const turn = this.turnOf(routed, request, buyer);
    if (turn !== null) return this.afterTurn(turn, routed, buyer, request, () => this.reserve(buyer, request));
    const { item, sliceIndex } = routed;
    const reservationId = item.reservationIds[sliceIndex]!.next(routed.slice);
    if (reservationId === null) return Promise.resolve(reject('unavailable'));
    const { clock, tokens, transfers } = this.context;
    return transfers
      .submitWithRebalance(item, sliceIndex, request.quantity, () => ({
        kind: 'reserve',
        userId: buyer.userId,
        quantity: request.quantity,
        reservationId,
        nowMs: clock.now(),
        idempotencyKey: request.idempotencyKey,
        refusal: this.refusalNow(buyer, request, routed),
      }))
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'reserved') return rejectionOf(outcome);
        // The event's own id and expiry: a retry is answered with the original reservation.
        const token = tokens.sign({
          itemId: item.definition.id,
          sliceIndex,
          reservationId: event.reservationId,
          userId: buyer.userId,
          expiresAt: event.expiresAt,
        });
        return { ok: true, token, expiresAt: event.expiresAt, itemId: item.definition.id, quantity: event.quantity };
      });
  }

  /**
   * Turns a reservation into an order. A blocked user's reservations can no longer become
   * orders (they can still be cancelled, or run out); see the README on blocks.
   */
  confirm(buyer: Buyer, token: string): Promise<Order | Rejection> {
    const target = this.tokenTarget(buyer, token);
    if (!target.ok) return Promise.resolve(target);
    if (this.context.blocked.has(buyer.userId)) return Promise.resolve(reject('blocked'));
    const { slice, itemId, reservationId } = target;
    const { orderService } = this.context;
    const sellerId = this.context.items.get(itemId)!.definition.sellerId;
    const orderId = orderService.ids.tryNext(buyer.userId, sellerId);
    if (orderId === undefined) return this.afterOrderIdLease(() => this.confirm(buyer, token));
    return slice
      .submit({ kind: 'confirm', userId: buyer.userId, reservationId, orderId, nowMs: this.context.clock.now() })
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'confirmed') return rejectionOf(outcome);
        orderService.acknowledged(acknowledgedView(orderId, itemId, buyer.userId, sellerId, event));
        return { ok: true, orderId, itemId, quantity: event.quantity };
      });
  }

  /** Gives a reservation's stock back. Allowed to blocked users too: it only helps the other buyers. */
  cancel(buyer: Buyer, token: string): Promise<Release | Rejection> {
    const target = this.tokenTarget(buyer, token);
    if (!target.ok) return Promise.resolve(target);
    const { slice, itemId, reservationId } = target;
    return slice
      .submit({ kind: 'cancel', userId: buyer.userId, reservationId, nowMs: this.context.clock.now() })
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'cancelled') return rejectionOf(outcome);
        return { ok: true, itemId, quantity: event.quantity };
      });
  }

  /**
   * The refusal `buy` or `reserve` would answer at once, from memory, without a hop to a slice;
   * `null` when the request goes on to its slice. Nothing changes in between: a caller that
   * gets `null` and calls `buy` at once is routed the same way.
   */
  refusalFromMemory(buyer: Buyer, request: PurchaseRequest): Rejection | null {
    const routed = this.route(buyer, request);
    return routed.ok ? null : routed;
  }

  /** A reserve and a confirm in one step: one journaled `purchased` event. */
  buy(buyer: Buyer, request: PurchaseRequest): Promise<Order | Rejection> {
    const routed = this.route(buyer, request);
    if (!routed.ok) return Promise.resolve(routed);
    const turn = this.turnOf(routed, request, buyer);
    if (turn !== null) return this.afterTurn(turn, routed, buyer, request, () => this.buy(buyer, request));
    const { clock, orderService, transfers } = this.context;
    const { sellerId } = routed.item.definition;
    const orderId = orderService.ids.tryNext(buyer.userId, sellerId);
    if (orderId === undefined) return this.afterOrderIdLease(() => this.buy(buyer, request));
    return transfers
      .submitWithRebalance(routed.item, routed.sliceIndex, request.quantity, () => ({
        kind: 'buy',
        userId: buyer.userId,
        quantity: request.quantity,
        orderId,
        nowMs: clock.now(),
        idempotencyKey: request.idempotencyKey,
        refusal: this.refusalNow(buyer, request, routed),
      }))
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'purchased') return rejectionOf(outcome);
        // The event's own order id: a retry is answered with the original order.
        orderService.acknowledged(acknowledgedView(event.orderId, request.itemId, buyer.userId, sellerId, event));
        return { ok: true, orderId: event.orderId, itemId: request.itemId, quantity: event.quantity };
      });
  }

  /**
   * The flash-sale crowd: where the slice would park the request (the demand queued ahead of it
   * already claims all the slice can still sell), the promise it waits on outside the slice,
   * before an order id, a reservation id or a command is made for it (see
   * src/actors/sliceInbox.ts); null when it goes on now. While it waits, the slice counts its
   * key, if it has one, as undecided, so that a retry of it is not taken for a new request.
   */
  private turnOf(routed: Routed, request: PurchaseRequest, buyer: Buyer): Promise<void> | null {
    return routed.slice.whenParkingEnds?.(request.quantity, buyer.userId, request.idempotencyKey) ?? null;
  }

  /**
   * Routes the request again from the start once its turn came: the commits ahead of it are in
   * the figures now, so most of the crowd hears `sold_out` from memory, and the rest go on to
   * the slice in the order they came. An engine closed meanwhile changed nothing for it.
   */
  private afterTurn<T>(
    turn: Promise<void>,
    routed: Routed,
    buyer: Buyer,
    request: PurchaseRequest,
    again: () => Promise<T | Rejection>,
  ): Promise<T | Rejection> {
    return turn.then(() => {
      if (request.idempotencyKey !== undefined) routed.slice.turnTaken?.(buyer.userId, request.idempotencyKey);
      return this.context.engine.isClosed ? reject('unavailable') : again();
    });
  }

  /** Order ids ran out of their leased ticks: `retry` once a new lease has committed. */
  private afterOrderIdLease<T>(retry: () => Promise<T | Rejection>): Promise<T | Rejection> {
    return this.context.orderService.ids.whenLeased().then(retry, (error: unknown) => {
      this.context.log('error', 'no order ids: leasing ticks failed', error);
      return reject('unavailable');
    });
  }

  /**
   * Everything that can be answered before a hop to a slice: the item exists, the user
   * qualifies, the sale is open, and there is stock at all. A sold-out item is answered here,
   * from memory, for as long as nothing is available; a keyed request goes on to its slice
   * with the refusal (see the module comment).
   */
  private route(buyer: Buyer, request: PurchaseRequest): Routed | Rejection {
    this.assertOpen();
    if (!Number.isSafeInteger(request.quantity) || request.quantity < 1) {
      return reject('invalid', 'qty must be a positive integer');
    }
    if (request.idempotencyKey !== undefined && !isIdempotencyKey(request.idempotencyKey)) {
      return reject('invalid', 'idempotencyKey must be a string of 1 to 64 characters');
    }
    const item = this.context.items.get(request.itemId);
    if (item === undefined) return reject('unknown_item');
    const refusal = this.refusalOf(buyer, item);
    if (refusal !== null && (request.idempotencyKey === undefined || this.isNewToItsSlice(buyer, item, request.idempotencyKey))) {
      return reject(refusal);
    }
    const sliceIndex = sliceIndexFor(buyer.userId, item.slices.length);
    return { ok: true, item, slice: item.slices[sliceIndex]!, sliceIndex, refusal: refusal ?? undefined };
  }

  /**
   * Whether the slice of a keyed request, deciding it now, would find it new, and so answer it
   * with the engine's own refusal (see the module comment). Only on an item of one slice: on
   * more, a slice's `sold_out` sends the request looking for stock on its siblings.
   */
  private isNewToItsSlice(buyer: Buyer, item: ItemRuntime, idempotencyKey: string): boolean {
    if (item.slices.length !== 1) return false;
    return item.slices[0]!.isNewRequest?.(buyer.userId, idempotencyKey) ?? false;
  }

  /**
   * The engine's refusal a keyed request carries to its slice, as it stands each time the
   * request is tried: a request tried again after stock moved between slices must not carry the
   * `sold_out` it was routed with once a restock has made it false, or its slice repeats it and
   * the buyer tries again and again (found by the simulation, seed 3001038). On the first try
   * this is the refusal `route` found, in the same turn.
   */
  private refusalNow(buyer: Buyer, request: PurchaseRequest, routed: Routed): RejectionReason | undefined {
    if (request.idempotencyKey === undefined) return routed.refusal;
    return this.refusalOf(buyer, routed.item) ?? undefined;
  }

  private assertOpen(): void {
    if (this.context.engine.isClosed) throw new EngineClosedError();
  }

  private refusalOf(buyer: Buyer, item: ItemRuntime): RejectionReason | null {
    const refusal = qualify(buyer, item.definition, this.context.blocked.has(buyer.userId));
    if (refusal !== null) return refusal;
    const nowMs = this.context.clock.now();
    const { startsAt, endsAt } = item.definition;
    if (nowMs < startsAt) return 'not_started';
    if (endsAt !== null && nowMs >= endsAt) return 'ended';
    // Only while every slice serves: a slice that reloads may hold a change in doubt (a restock,
    // a cancellation) that put stock back, so its figures do not prove the item sold out; the
    // request goes to the slice, which answers the truth (found by the simulation, seed 66).
    if (availableOf(item) === 0 && allServing(item)) return 'sold_out';
    return null;
  }

  private tokenTarget(
    buyer: Buyer,
    token: string,
  ): { ok: true; slice: SliceHandle; itemId: string; reservationId: string } | Rejection {
    this.assertOpen();
    const claims = typeof token === 'string' ? this.context.tokens.verify(token) : null;
    if (claims === null || claims.userId !== buyer.userId) return reject('token_invalid');
    const slice = this.context.items.get(claims.itemId)?.slices[claims.sliceIndex];
    if (slice === undefined) return reject('token_invalid');
    return { ok: true, slice, itemId: claims.itemId, reservationId: claims.reservationId };
  }
}

function rejectionOf(outcome: SliceOutcome): Rejection {
  // Not `unavailable`: that would promise that nothing changed.
  if (outcome.outcomeUnknown === true) throw new OutcomeUnknownError('the engine closed before the outcome was known');
  return reject(outcome.rejection ?? 'unavailable');
}

function acknowledgedView(
  orderId: string,
  itemId: string,
  userId: string,
  sellerId: string,
  event: { readonly quantity: number; readonly atMs: number },
): OrderView {
  return { orderId, itemId, userId, sellerId, qty: event.quantity, status: 'confirmed', createdAt: event.atMs };
}
