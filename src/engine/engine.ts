/**
 * The engine's facade: administration, buying, reading and closing. The work behind it lives
 * beside it: the item runtime and views (`itemRuntime.ts`, `stockNotifier.ts`), restock
 * (`restock.ts`), transfers and rebalancing (`transfers.ts`), creation and start-up
 * (`create.ts`).
 */
import type pg from 'pg';
import type { SliceFigures, SliceHandle, SliceOutcome } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import type { SliceEvent } from '../domain/slice.js';
import { reject, type Rejection } from '../domain/reasons.js';
import { EngineClosedError, StorageUnavailableError } from '../errors.js';
import { IdGenerator } from '../ids.js';
import {
  describeItemDefinition,
  parseItemAmendment,
  parseItemDefinition,
  qualify,
  sliceIndexFor,
  type Buyer,
  type ItemDefinition,
  type ItemView,
  type SaleTerms,
} from '../items.js';
import type { EngineLock } from '../persistence/engineLock.js';
import type { Catalog, SlicePlacement } from '../persistence/catalog.js';
import type { SliceRuntime } from '../sliceRuntime.js';
import type { TokenSigner } from '../tokens.js';
import { adminViewOf, availableOf, newItemRuntime, trackTransfers, viewOf, type ItemRuntime } from './itemRuntime.js';
import { amendItemTerms, endingTerms, reconcileSlices } from './amend.js';
import { restockSlices } from './restock.js';
import { StockNotifier } from './stockNotifier.js';
import { Transfers } from './transfers.js';
import type { OrderService, OrderResult } from '../orders/orderService.js';
import type {
  AdminItemView,
  AdminResult,
  EngineLog,
  Order,
  OrderPage,
  OrderView,
  PageRequest,
  PurchaseRequest,
  Release,
  Reservation,
} from './types.js';

export class Engine {
  private closed = false;
  private readonly items = new Map<string, ItemRuntime>();
  private readonly sliceItems = new Map<string, string>();
  private readonly sliceHandles = new Map<string, SliceHandle>();
  private readonly blocked = new Set<string>();
  private readonly notifier = new StockNotifier((itemId) => this.itemView(itemId));
  private readonly ids: IdGenerator;
  private readonly transfers: Transfers;

  /** Use `createEngine`. */
  constructor(
    private readonly catalog: Catalog,
    private readonly pools: readonly pg.Pool[],
    private readonly runtime: SliceRuntime,
    private readonly tokens: TokenSigner,
    private readonly clock: Clock,
    /** Stops the embedded PostgreSQL and removes temporary storage, once the engine let go of it. */
    private readonly storage: { stop(): Promise<void> },
    nodeId: number,
    private readonly log: EngineLog,
    private readonly defaultSlices: number,
    private readonly engineLock: EngineLock,
    /** Order ids, the order databases and their projection, order queries and cancellation. */
    readonly orderService: OrderService,
  ) {
    this.ids = new IdGenerator(clock, nodeId);
    this.transfers = new Transfers(clock, this.ids, () => this.closed);
  }

  // ---------------------------------------------------------------- administration

  async createItem(body: unknown): Promise<AdminResult<ItemView>> {
    this.assertOpen();
    const nowMs = this.clock.now();
    const parsed = parseItemDefinition(body, nowMs, this.defaultSlices);
    if (!parsed.ok) return { ok: false, error: 'invalid', message: parsed.message };
    const { definition } = parsed;
    if (this.items.has(definition.id)) return { ok: false, error: 'conflict', message: `item ${definition.id} exists` };

    let placements: SlicePlacement[];
    try {
      placements = await this.catalog.insertItem(definition, nowMs);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        return { ok: false, error: 'conflict', message: `item ${definition.id} exists` };
      }
      this.log('error', `creating item ${definition.id} failed`, error);
      return { ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was created' };
    }
    await this.startItem(definition, placements);
    this.log('info', `item ${definition.id} created: ${describeItemDefinition(definition)}`, definition);
    return { ok: true, value: this.itemView(definition.id)! };
  }

  /** Adds `delta` units to an item, spread over its slices. */
  async restock(itemId: string, delta: number): Promise<AdminResult<ItemView>> {
    this.assertOpen();
    const item = this.items.get(itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    const failure = await restockSlices(item, delta, this.clock.now());
    if (failure !== null) return failure;
    const view = this.itemView(itemId)!;
    this.log('info', `item ${itemId} restocked: ${delta} units added, stock now ${view.stock}, ${view.available} available`);
    return { ok: true, value: view };
  }

  async block(userId: string): Promise<void> {
    this.assertOpen();
    await this.catalog.block(userId, this.clock.now());
    this.blocked.add(userId);
    this.log('info', `user ${userId} blocked from every sale`);
  }

  async unblock(userId: string): Promise<void> {
    this.assertOpen();
    await this.catalog.unblock(userId);
    this.blocked.delete(userId);
    this.log('info', `user ${userId} unblocked`);
  }

  /**
   * Changes an item's window or per-user limit: `change` is the body of PATCH /admin/items/:id,
   * `{perUserLimit?, startsAt?, endsAt?}`. Journaled in every slice (see amend.ts).
   */
  async amendItem(itemId: string, change: unknown): Promise<AdminResult<AdminItemView>> {
    this.assertOpen();
    const item = this.items.get(itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    const parsed = parseItemAmendment(change, item.definition);
    if (!parsed.ok) return { ok: false, error: 'invalid', message: parsed.message };
    return this.applyTerms(item, parsed.terms);
  }

  /** Ends an item's sale now: nobody can reserve or buy it any more; open reservations may still be confirmed. */
  async endSale(itemId: string): Promise<AdminResult<AdminItemView>> {
    this.assertOpen();
    const item = this.items.get(itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    const ending = endingTerms(item.definition, this.clock.now());
    if (!ending.ok) return ending;
    return this.applyTerms(item, ending.terms);
  }

  private async applyTerms(item: ItemRuntime, terms: SaleTerms): Promise<AdminResult<AdminItemView>> {
    const failure = await amendItemTerms(item, terms, {
      nowMs: () => this.clock.now(),
      store: (itemId, stored) => this.catalog.amendItem(itemId, stored),
      log: this.log,
    });
    return failure ?? { ok: true, value: this.adminItem(item.definition.id)! };
  }

  /** The item view with what only an administrator sees: each slice's figures and state. */
  adminItem(itemId: string): AdminItemView | undefined {
    const item = this.items.get(itemId);
    return item === undefined ? undefined : adminViewOf(item, this.clock.now());
  }

  isBlocked(userId: string): boolean {
    return this.blocked.has(userId);
  }

  // ---------------------------------------------------------------- buying

  reserve(buyer: Buyer, request: PurchaseRequest): Promise<Reservation | Rejection> {
    const routed = this.route(buyer, request);
    if (!routed.ok) return Promise.resolve(routed);
    const { item, sliceIndex } = routed;
    const reservationId = this.ids.next(buyer.userId);
    return this.transfers
      .submitWithRebalance(item, sliceIndex, request.quantity, () => ({
        kind: 'reserve',
        userId: buyer.userId,
        quantity: request.quantity,
        reservationId,
        nowMs: this.clock.now(),
      }))
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'reserved') return rejectionOf(outcome);
        const token = this.tokens.sign({
          itemId: item.definition.id,
          sliceIndex,
          reservationId,
          userId: buyer.userId,
          expiresAt: event.expiresAt,
        });
        return { ok: true, token, expiresAt: event.expiresAt, itemId: item.definition.id, quantity: event.quantity };
      });
  }

  confirm(buyer: Buyer, token: string): Promise<Order | Rejection> {
    const target = this.tokenTarget(buyer, token);
    if (!target.ok) return Promise.resolve(target);
    const { slice, itemId, reservationId } = target;
    const sellerId = this.items.get(itemId)!.definition.sellerId;
    const orderId = this.orderService.ids.tryNext(buyer.userId, sellerId);
    if (orderId === undefined) return this.afterOrderIdLease(() => this.confirm(buyer, token));
    return slice
      .submit({ kind: 'confirm', userId: buyer.userId, reservationId, orderId, nowMs: this.clock.now() })
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'confirmed') return rejectionOf(outcome);
        this.orderService.acknowledged(acknowledgedView(orderId, itemId, buyer.userId, sellerId, event));
        return { ok: true, orderId, itemId, quantity: event.quantity };
      });
  }

  cancel(buyer: Buyer, token: string): Promise<Release | Rejection> {
    const target = this.tokenTarget(buyer, token);
    if (!target.ok) return Promise.resolve(target);
    const { slice, itemId, reservationId } = target;
    return slice
      .submit({ kind: 'cancel', userId: buyer.userId, reservationId, nowMs: this.clock.now() })
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'cancelled') return rejectionOf(outcome);
        return { ok: true, itemId, quantity: event.quantity };
      });
  }

  /** A reserve and a confirm in one step: one journaled `purchased` event. */
  buy(buyer: Buyer, request: PurchaseRequest): Promise<Order | Rejection> {
    const routed = this.route(buyer, request);
    if (!routed.ok) return Promise.resolve(routed);
    const { sellerId } = routed.item.definition;
    const orderId = this.orderService.ids.tryNext(buyer.userId, sellerId);
    if (orderId === undefined) return this.afterOrderIdLease(() => this.buy(buyer, request));
    return this.transfers
      .submitWithRebalance(routed.item, routed.sliceIndex, request.quantity, () => ({
        kind: 'buy',
        userId: buyer.userId,
        quantity: request.quantity,
        orderId,
        nowMs: this.clock.now(),
      }))
      .then((outcome) => {
        const event = outcome.events[0];
        if (outcome.rejection !== null || event?.kind !== 'purchased') return rejectionOf(outcome);
        this.orderService.acknowledged(acknowledgedView(orderId, request.itemId, buyer.userId, sellerId, event));
        return { ok: true, orderId, itemId: request.itemId, quantity: event.quantity };
      });
  }

  /** Order ids ran out of their leased ticks: `retry` once a new lease has committed. */
  private afterOrderIdLease<T>(retry: () => Promise<T | Rejection>): Promise<T | Rejection> {
    return this.orderService.ids.whenLeased().then(retry, (error: unknown) => {
      this.log('error', 'no order ids: leasing ticks failed', error);
      return reject('unavailable');
    });
  }

  // ---------------------------------------------------------------- reading

  /** The item view, from memory: the figures of the last committed change of each slice. */
  item(itemId: string): ItemView | undefined {
    return this.itemView(itemId);
  }

  definition(itemId: string): ItemDefinition | undefined {
    return this.items.get(itemId)?.definition;
  }

  itemIds(): string[] {
    return [...this.items.keys()];
  }

  /** Calls `listener` with an item's view whenever its committed figures change, at most once per event-loop turn. */
  onStock(listener: (view: ItemView) => void): () => void {
    return this.notifier.listen(listener);
  }

  /**
   * The user's orders, newest first, the first page of `orderPage`. Holds every order this
   * engine acknowledged to the user, however far the projection lags; rejects with
   * `StorageUnavailableError` when it cannot say.
   */
  async orders(userId: string): Promise<OrderView[]> {
    return pageOrThrow(await this.orderPage(userId, {}));
  }

  /** The seller's orders, newest first, the first page of `sellerOrderPage`. */
  async sellerOrders(sellerId: string): Promise<OrderView[]> {
    return pageOrThrow(await this.sellerOrderPage(sellerId, {}));
  }

  /** A page of the user's orders, newest first; `next` asks for the page after it. */
  orderPage(userId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    this.assertOpen();
    return this.orderService.buyerPage(userId, request);
  }

  /** A page of the seller's orders, newest first; may lag behind by the projection lag. */
  sellerOrderPage(sellerId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    this.assertOpen();
    return this.orderService.sellerPage(sellerId, request);
  }

  /**
   * Cancels a confirmed order (an administrator's act): through its slice's journal, its units
   * go back on sale and its buyer's limit is freed. Cancelling it again changes nothing.
   */
  cancelOrder(orderId: string): Promise<AdminResult<OrderView>> {
    this.assertOpen();
    return this.orderService.cancel(orderId, (sliceId) => this.sliceHandles.get(sliceId));
  }

  /** Whether storage answers now: the inventory and the order databases. */
  async storageReachable(): Promise<boolean> {
    const [inventory, orders] = await Promise.all([this.catalog.reachable(), this.orderService.reachable()]);
    return inventory && orders;
  }

  /** Events decided and waiting for a journal flush: how far durability lags behind decisions. */
  get journalBacklog(): number {
    return this.runtime.backlog;
  }

  /** Kills a shard's worker thread as a crash would, for fault drills; the engine replaces it. */
  async killShardWorker(shardIndex: number): Promise<void> {
    if (this.runtime.terminateWorker === undefined) throw new Error('this engine runs no shard workers');
    await this.runtime.terminateWorker(shardIndex);
  }

  /** After a shard worker was replaced, transfers its slices were part of may be half done. */
  async shardRecovered(): Promise<void> {
    for (const item of this.items.values()) {
      if (item.slices.length > 1) await this.transfers.settle(item);
    }
  }

  /**
   * True when open, every slice of every item serves, and the order projection has caught up
   * with what the journals held at start: what a readiness probe asks.
   */
  get ready(): boolean {
    if (this.closed || !this.orderService.caughtUpSinceStart) return false;
    for (const item of this.items.values()) {
      for (const slice of item.slices) if (!slice.serving) return false;
    }
    return true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Commits and answers everything in flight, then stops the actors and the database connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.runtime.close();
    await this.orderService.close();
    await Promise.all(this.pools.map((pool) => pool.end()));
    await this.engineLock.release();
    await this.storage.stop();
  }

  // ---------------------------------------------------------------- start-up and slice reports

  /** Called by `createEngine` for each stored item, and by `createItem`. */
  async startItem(definition: ItemDefinition, placements: readonly SlicePlacement[]): Promise<void> {
    // Neighbouring slices of an item go to different shards, starting at a shard chosen by
    // the item, so several hot items spread too.
    const firstShard = sliceIndexFor(definition.id, 1_024);
    const slices = placements.map(({ sliceId, databaseIndex }, index) => {
      this.sliceItems.set(sliceId, definition.id);
      this.orderService.addSlice(sliceId, databaseIndex, { itemId: definition.id, sellerId: definition.sellerId });
      const slice = this.runtime.spawn(sliceId, databaseIndex, firstShard + index);
      this.sliceHandles.set(sliceId, slice);
      return slice;
    });
    const item = newItemRuntime(definition, slices);
    this.items.set(definition.id, item);
    await Promise.all(slices.map((slice) => slice.ready));
    await this.transfers.settle(item);
    // The catalog's terms win over a slice's: a slice may keep a failed change whose undo failed too.
    const behind = await reconcileSlices(item, this.clock.now());
    if (behind !== null) this.log('warn', `${behind}; they take them at the next start`);
  }

  loadBlocklist(userIds: Iterable<string>): void {
    for (const userId of userIds) this.blocked.add(userId);
  }

  sliceChanged(sliceId: string, _figures: SliceFigures, events: readonly SliceEvent[]): void {
    if (events.length > 0) this.orderService.committed();
    const itemId = this.sliceItems.get(sliceId);
    if (itemId === undefined) return;
    const item = this.items.get(itemId);
    if (item !== undefined) trackTransfers(item, events);
    this.notifier.changed(itemId);
  }

  // ---------------------------------------------------------------- internals

  private itemView(itemId: string): ItemView | undefined {
    const item = this.items.get(itemId);
    return item === undefined ? undefined : viewOf(item, this.clock.now());
  }

  /**
   * Everything that can be answered before a hop to a slice: the item exists, the user
   * qualifies, the sale is open, and there is stock at all. A sold-out item is answered here,
   * from memory, for as long as nothing is available.
   */
  private route(
    buyer: Buyer,
    request: PurchaseRequest,
  ): { ok: true; item: ItemRuntime; slice: SliceHandle; sliceIndex: number } | Rejection {
    this.assertOpen();
    if (!Number.isSafeInteger(request.quantity) || request.quantity < 1) {
      return reject('invalid', 'qty must be a positive integer');
    }
    const item = this.items.get(request.itemId);
    if (item === undefined) return reject('unknown_item');
    const refusal = qualify(buyer, item.definition, this.blocked.has(buyer.userId));
    if (refusal !== null) return reject(refusal);
    const nowMs = this.clock.now();
    const { startsAt, endsAt } = item.definition;
    if (nowMs < startsAt) return reject('not_started');
    if (endsAt !== null && nowMs >= endsAt) return reject('ended');
    if (availableOf(item) === 0) return reject('sold_out');
    const sliceIndex = sliceIndexFor(buyer.userId, item.slices.length);
    return { ok: true, item, slice: item.slices[sliceIndex]!, sliceIndex };
  }

  private tokenTarget(
    buyer: Buyer,
    token: string,
  ): { ok: true; slice: SliceHandle; itemId: string; reservationId: string } | Rejection {
    this.assertOpen();
    const claims = typeof token === 'string' ? this.tokens.verify(token) : null;
    if (claims === null || claims.userId !== buyer.userId) return reject('token_invalid');
    const slice = this.items.get(claims.itemId)?.slices[claims.sliceIndex];
    if (slice === undefined) return reject('token_invalid');
    return { ok: true, slice, itemId: claims.itemId, reservationId: claims.reservationId };
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineClosedError();
  }
}

function rejectionOf(outcome: SliceOutcome): Rejection {
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

function pageOrThrow(result: OrderResult<OrderPage>): OrderView[] {
  if (result.ok) return result.value.orders;
  throw new StorageUnavailableError(result.message);
}
