/**
 * The engine's facade: administration, buying, reading and closing. The work behind it lives
 * beside it: the item runtime and views (`itemRuntime.ts`, `stockNotifier.ts`), buying
 * (`purchases.ts`), reservation ids (`reservationIds.ts`), storing a new item (`itemCreation.ts`),
 * restock (`restock.ts`), amendments (`amend.ts`), transfers and rebalancing (`transfers.ts`),
 * creation and start-up (`create.ts`).
 */
import type pg from 'pg';
import type { SliceHandle } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import type { Rejection } from '../domain/reasons.js';
import { EngineClosedError, StorageUnavailableError } from '../errors.js';
import { IdGenerator } from '../ids.js';
import {
  describeItemDefinition,
  parseItemAmendment,
  parseItemDefinition,
  sliceIndexFor,
  type Buyer,
  type ItemDefinition,
  type ItemView,
  type SaleTerms,
} from '../items.js';
import type { EngineLock } from '../persistence/engineLock.js';
import type { Catalog, SlicePlacement } from '../persistence/catalog.js';
import { reconcileItem, type Reconciliation } from '../replay/reconcile.js';
import { realTimers, type Timers } from '../timers.js';
import type { SliceRuntime } from '../sliceRuntime.js';
import type { TokenSigner } from '../tokens.js';
import { adminViewOf, newItemRuntime, viewOf, type ItemRuntime } from './itemRuntime.js';
import { amendItemTerms, endingTerms, reconcileSlices } from './amend.js';
import { storeNewItem } from './itemCreation.js';
import { restockSlices } from './restock.js';
import { StockNotifier } from './stockNotifier.js';
import { Purchases } from './purchases.js';
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
  private readonly purchases: Purchases;
  private readonly transfers: Transfers;

  /** Use `createEngine`. */
  constructor(
    private readonly catalog: Catalog,
    private readonly pools: readonly pg.Pool[],
    private readonly runtime: SliceRuntime,
    tokens: TokenSigner,
    private readonly clock: Clock,
    /** Stops the embedded PostgreSQL and removes temporary storage, once the engine let go of it. */
    private readonly storage: { readonly databaseUrls: readonly string[]; stop(): Promise<void> },
    nodeId: number,
    private readonly log: EngineLog,
    private readonly defaultSlices: number,
    private readonly engineLock: EngineLock,
    /** Order ids, the order databases and their projection, order queries and cancellation. */
    readonly orderService: OrderService,
    private readonly timers: Timers = realTimers,
  ) {
    this.transfers = new Transfers(clock, () => this.closed, log, timers);
    this.purchases = new Purchases({
      items: this.items,
      blocked: this.blocked,
      clock,
      orderService,
      tokens,
      transfers: this.transfers,
      engine: this,
      log,
    });
  }

  // ---------------------------------------------------------------- administration

  /**
   * The item's expired and cancelled reservations and its cancelled orders decided in
   * [fromMs, toMs), from its journals (GET /admin/items/:id/reconciliation).
   */
  async reconciliation(itemId: string, fromMs: number, toMs: number): Promise<AdminResult<Reconciliation>> {
    this.assertOpen();
    const item = (await this.catalog.loadItems()).find((stored) => stored.definition.id === itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    return { ok: true, value: await reconcileItem(this.pools, item, fromMs, toMs) };
  }

  async createItem(body: unknown): Promise<AdminResult<ItemView>> {
    this.assertOpen();
    const nowMs = this.clock.now();
    const parsed = parseItemDefinition(body, nowMs, this.defaultSlices);
    if (!parsed.ok) return { ok: false, error: 'invalid', message: parsed.message };
    const { definition } = parsed;
    if (this.items.has(definition.id)) return { ok: false, error: 'conflict', message: `item ${definition.id} exists` };

    const stored = await storeNewItem(this.catalog, definition, nowMs, this.log);
    if (!stored.ok) return stored;
    await this.startItem(definition, stored.placements);
    this.log('info', `item ${definition.id} created: ${describeItemDefinition(definition)}`, definition);
    return { ok: true, value: this.itemView(definition.id)! };
  }

  /**
   * Adds `delta` units to an item, spread over its slices. Safe to retry with the same
   * `idempotencyKey` (a failure names the key it used when the caller gave none); see
   * `restock.ts` for what a failure says.
   */
  async restock(itemId: string, delta: number, idempotencyKey?: string): Promise<AdminResult<ItemView>> {
    this.assertOpen();
    const item = this.items.get(itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    const failure = await restockSlices(item, delta, idempotencyKey, this.clock, this.timers);
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
    if (failure !== null) return failure;
    // The slices told their figures before the item's definition took the new terms: the stock
    // listeners hear again, with the new window (a sale ended now is `ended` at once).
    this.notifier.changed(item.definition.id);
    return { ok: true, value: this.adminItem(item.definition.id)! };
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
    return this.purchases.reserve(buyer, request);
  }

  /** Turns a reservation into an order; refused to a blocked user. */
  confirm(buyer: Buyer, token: string): Promise<Order | Rejection> {
    return this.purchases.confirm(buyer, token);
  }

  /** Gives a reservation's stock back; allowed to a blocked user too. */
  cancel(buyer: Buyer, token: string): Promise<Release | Rejection> {
    return this.purchases.cancel(buyer, token);
  }

  /** A reserve and a confirm in one step: one journaled `purchased` event. */
  buy(buyer: Buyer, request: PurchaseRequest): Promise<Order | Rejection> {
    return this.purchases.buy(buyer, request);
  }

  /**
   * What `buy` or `reserve` would answer at once when that is a refusal decided from memory
   * (unknown item, a user who does not qualify, a sale not open, sold out), without the
   * promise; `null` when the request would go on to its slice. The server answers most of a
   * flash sale's crowd this way, synchronously.
   */
  refusalFromMemory(buyer: Buyer, request: PurchaseRequest): Rejection | null {
    return this.purchases.refusalFromMemory(buyer, request);
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

  /** The inventory databases' URLs, the primary first (on the embedded PostgreSQL, its own). */
  get databaseUrls(): readonly string[] {
    return this.storage.databaseUrls;
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

  /**
   * Settles when the engine is quiet: every timer that is due has run (a `SimulatedClock` runs
   * due timers inside `advance()`), and every command they or callers started has been decided,
   * committed and answered, transfers between slices included. For tests: advance the clock,
   * await `idle()`, then read, with no polling.
   */
  async idle(): Promise<void> {
    this.assertOpen();
    // Answers run as promise callbacks after their commit and may start more work (a transfer,
    // a retried rebalance); quiet means two looks in a row with nothing left.
    for (let quietLooks = 0; quietLooks < 2; ) {
      const before = this.runtime.backlog;
      await this.runtime.idle();
      const moving = [...this.items.values()].flatMap((item) => [...item.deliveries.values(), ...item.rebalancing.values()]);
      await Promise.allSettled(moving);
      await new Promise((resolve) => setImmediate(resolve));
      quietLooks = before === 0 && moving.length === 0 && this.runtime.backlog === 0 ? quietLooks + 1 : 0;
    }
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

  /**
   * A slice's committed figures changed: its item's listeners hear of it, and the order
   * projection looks for new orders (every order, and every cancellation, changes the figures).
   */
  sliceChanged(sliceId: string): void {
    this.orderService.committed();
    const itemId = this.sliceItems.get(sliceId);
    if (itemId !== undefined) this.notifier.changed(itemId);
  }

  // ---------------------------------------------------------------- internals

  private itemView(itemId: string): ItemView | undefined {
    const item = this.items.get(itemId);
    return item === undefined ? undefined : viewOf(item, this.clock.now());
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineClosedError();
  }
}

function pageOrThrow(result: OrderResult<OrderPage>): OrderView[] {
  if (result.ok) return result.value.orders;
  throw new StorageUnavailableError(result.message);
}
