/**
 * The engine's public API, used in-process by other programs' tests and by the server, which
 * is a thin adapter over it.
 *
 *   const engine = await createEngine({ databaseUrl });        // or no URL: embedded PostgreSQL
 *   await engine.createItem({ id: '42', name: 'Phone', sellerId: '7', stock: 1000 });
 *   const order = await engine.buy({ userId: '1001' }, { itemId: '42', quantity: 1 });
 *   engine.item('42');                                          // { available, reserved, sold, status, ... }
 *   await engine.close();
 *
 * What it promises: a successful `reserve`, `confirm`, `buy` or `cancel` resolves only after
 * the change is committed to PostgreSQL; stock is never oversold; a user never holds more than
 * the item's `perUserLimit`. A business "no" resolves to `{ ok: false, reason }`; the promises
 * reject only on programming errors (an engine used after `close`).
 */
import path from 'node:path';
import pg from 'pg';
import type { SliceFigures, SliceHandle, SliceOutcome } from './actors/sliceActor.js';
import { systemClock, type Clock } from './clock.js';
import type { SliceCommand, SliceEvent } from './domain/slice.js';
import { reject, type Rejection } from './domain/reasons.js';
import { EngineClosedError, StorageUnavailableError } from './errors.js';
import { IdGenerator } from './ids.js';
import {
  itemStatus,
  parseItemDefinition,
  qualify,
  sliceIndexFor,
  splitEvenly,
  type Buyer,
  type ItemDefinition,
  type ItemView,
} from './items.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './persistence/embeddedPostgres.js';
import { takeEngineLock, type EngineLock } from './persistence/engineLock.js';
import { Catalog, type SlicePlacement } from './persistence/catalog.js';
import type { FlushReport } from './persistence/journal.js';
import { migrate } from './persistence/migrations.js';
import { createPool } from './persistence/pools.js';
import { InProcessSlices, ShardedSlices, type SliceRuntime } from './sliceRuntime.js';
import { TokenSigner } from './tokens.js';
import { OrderService, type OrderResult } from './orders/orderService.js';
import { orderDatabaseUrlsFor, type OrderOptions } from './orders/orderOptions.js';
import { tablesPerDatabaseDefault } from './orders/orderDatabases.js';
import type { OrderPage, OrderView, PageRequest } from './orders/orderQueries.js';

export type { Buyer, ItemDefinition, ItemView } from './items.js';
export type { Rejection, RejectionReason } from './domain/reasons.js';

export interface EngineOptions extends OrderOptions {
  /**
   * The primary PostgreSQL database: the catalog, the blocklist, and the first inventory
   * database. Unset: an embedded PostgreSQL in `dataDirectory`, with two inventory databases.
   */
  readonly databaseUrl?: string | undefined;
  /** Further inventory databases, over which the slices of an item are spread with the primary's. */
  readonly extraInventoryDatabaseUrls?: readonly string[] | undefined;
  /** Where the embedded PostgreSQL keeps its data; default `./.seckill`. */
  readonly dataDirectory?: string | undefined;
  readonly clock?: Clock;
  /** Events written by one journal transaction at most. */
  readonly flushEventsMax?: number;
  readonly snapshotEvery?: number;
  readonly mailboxDepthMax?: number;
  /**
   * Worker threads hosting the slices (piscina). 0 runs every slice in this thread, which on a
   * 2-core machine is the fastest for one hot item (see bench/shards.ts).
   */
  readonly shards?: number;
  /** Slices of an item created without `slices`: the engine's choice. */
  readonly defaultSlices?: number;
  /** Engine process number (0..99), kept in the order ids (src/orders/orderIds.ts). */
  readonly nodeId?: number;
  readonly log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
  /** Told about every journal flush: batch size and duration, for metrics and benchmarks. */
  readonly onFlush?: (report: FlushReport) => void;
}

export interface Reservation {
  readonly ok: true;
  readonly token: string;
  readonly expiresAt: number;
  readonly itemId: string;
  readonly quantity: number;
}

export interface Order {
  readonly ok: true;
  readonly orderId: string;
  readonly itemId: string;
  readonly quantity: number;
}

export interface Release {
  readonly ok: true;
  readonly itemId: string;
  readonly quantity: number;
}

export type { OrderPage, OrderView, PageRequest } from './orders/orderQueries.js';

/** An administrative request that did not go through. */
export interface AdminFailure {
  readonly ok: false;
  readonly error: 'invalid' | 'conflict' | 'not_found' | 'unavailable';
  readonly message: string;
}

export type AdminResult<T> = { readonly ok: true; readonly value: T } | AdminFailure;

export interface PurchaseRequest {
  readonly itemId: string;
  readonly quantity: number;
}

/**
 * Times a purchase is retried on its slice after stock was moved there from a sibling. A
 * purchase gives up early only when no sibling has stock left; this bound only guards against
 * a bug that would keep moving stock around forever.
 */
const rebalanceAttemptsMax = 10_000;
const transferRetryDelayMs = 200;

interface ItemRuntime {
  readonly definition: ItemDefinition;
  readonly slices: SliceHandle[];
  /** Units given out by one slice and not yet received by another, by transfer id. */
  readonly inTransfer: Map<string, number>;
  /** A running rebalance per receiving slice index, which concurrent buyers share. */
  readonly rebalancing: Map<number, Promise<boolean>>;
  /** Units wanted by the buyers waiting on the next rebalance of each receiving slice. */
  readonly demand: Map<number, number>;
}

export class Engine {
  private closed = false;
  private readonly items = new Map<string, ItemRuntime>();
  private readonly sliceItems = new Map<string, string>();
  private readonly sliceHandles = new Map<string, SliceHandle>();
  private readonly blocked = new Set<string>();
  private readonly stockListeners = new Set<(view: ItemView) => void>();
  private readonly changedItems = new Set<string>();
  private notifyScheduled = false;
  private readonly ids: IdGenerator;

  /** Use `createEngine`. */
  constructor(
    private readonly catalog: Catalog,
    private readonly pools: readonly pg.Pool[],
    private readonly runtime: SliceRuntime,
    private readonly tokens: TokenSigner,
    private readonly clock: Clock,
    private readonly embedded: EmbeddedPostgresHandle | undefined,
    nodeId: number,
    private readonly log: NonNullable<EngineOptions['log']>,
    private readonly defaultSlices: number,
    private readonly engineLock: EngineLock,
    /** Order ids, the order databases and their projection, order queries and cancellation. */
    readonly orderService: OrderService,
  ) {
    this.ids = new IdGenerator(clock, nodeId);
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
    return { ok: true, value: this.itemView(definition.id)! };
  }

  /** Adds `delta` units to an item, spread over its slices. */
  async restock(itemId: string, delta: number): Promise<AdminResult<ItemView>> {
    this.assertOpen();
    const item = this.items.get(itemId);
    if (item === undefined) return { ok: false, error: 'not_found', message: `no item ${itemId}` };
    if (!Number.isSafeInteger(delta) || delta < 1 || delta > 1_000_000_000) {
      return { ok: false, error: 'invalid', message: 'delta must be a positive integer' };
    }
    const nowMs = this.clock.now();
    const shares = splitEvenly(delta, item.slices.length);
    const outcomes = await Promise.all(
      item.slices.map((slice, index) =>
        shares[index]! > 0 ? slice.submit({ kind: 'restock', quantity: shares[index]!, nowMs }) : undefined,
      ),
    );
    if (outcomes.some((outcome) => outcome !== undefined && outcome.rejection !== null)) {
      return { ok: false, error: 'unavailable', message: 'storage is unavailable; the restock was not applied' };
    }
    return { ok: true, value: this.itemView(itemId)! };
  }

  async block(userId: string): Promise<void> {
    this.assertOpen();
    await this.catalog.block(userId, this.clock.now());
    this.blocked.add(userId);
  }

  async unblock(userId: string): Promise<void> {
    this.assertOpen();
    await this.catalog.unblock(userId);
    this.blocked.delete(userId);
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
    return this.submitWithRebalance(item, sliceIndex, request.quantity, () => ({
      kind: 'reserve',
      userId: buyer.userId,
      quantity: request.quantity,
      reservationId,
      nowMs: this.clock.now(),
    })).then((outcome) => {
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
    return this.submitWithRebalance(routed.item, routed.sliceIndex, request.quantity, () => ({
      kind: 'buy',
      userId: buyer.userId,
      quantity: request.quantity,
      orderId,
      nowMs: this.clock.now(),
    })).then((outcome) => {
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
    this.stockListeners.add(listener);
    return () => this.stockListeners.delete(listener);
  }

  /**
   * The user's orders, newest first, the first page of `orderPage`. Holds every order this
   * engine acknowledged to the user, however far the projection lags; rejects with
   * `StorageUnavailableError` when it cannot say.
   */
  async orders(userId: string): Promise<OrderView[]> {
    return pageOrThrow(await this.orderPage(userId, {}));
  }

  /** The seller's orders, newest first, the first page of `sellerOrderPage`; may lag by the projection lag. */
  async sellerOrders(sellerId: string): Promise<OrderView[]> {
    return pageOrThrow(await this.sellerOrderPage(sellerId, {}));
  }

  /** A page of the user's orders, newest first; `next` asks for the page after it. */
  orderPage(userId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    this.assertOpen();
    return this.orderService.buyerPage(userId, request);
  }

  /** A page of the seller's orders, newest first. */
  sellerOrderPage(sellerId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    this.assertOpen();
    return this.orderService.sellerPage(sellerId, request);
  }

  /**
   * Cancels a confirmed order (an administrator's act): through its slice's journal, its units
   * go back on sale and its buyer's limit is freed. Cancelling it again changes nothing.
   */
  cancelOrder(orderId: string): Promise<OrderResult<OrderView>> {
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
      if (item.slices.length > 1) await this.settleTransfers(item);
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
    await this.embedded?.stop();
  }

  // ---------------------------------------------------------------- internals

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
    const item: ItemRuntime = { definition, slices, inTransfer: new Map(), rebalancing: new Map(), demand: new Map() };
    this.items.set(definition.id, item);
    await Promise.all(slices.map((slice) => slice.ready));
    await this.settleTransfers(item);
  }

  /**
   * Delivers every transfer a slice of the item gave away and did not settle: after a crash
   * between the giver's commit and the receiver's, the units are still in transfer. Delivery
   * is idempotent at the receiver, so a transfer that did arrive is only settled.
   */
  private async settleTransfers(item: ItemRuntime): Promise<void> {
    for (const [giverIndex, giver] of item.slices.entries()) {
      for (const transfer of giver.figures.outgoing) {
        await this.deliverTransfer(item, giverIndex, transfer.toSliceIndex, transfer.transferId, transfer.quantity);
      }
    }
  }

  /**
   * Submits a purchase to its slice. When the slice has too little stock while its siblings
   * still have some, stock is moved to it through a journaled transfer and the purchase is
   * tried again, so the item answers `sold_out` only when no slice has the stock.
   */
  private async submitWithRebalance(
    item: ItemRuntime,
    sliceIndex: number,
    quantity: number,
    command: () => SliceCommand,
  ): Promise<SliceOutcome> {
    const slice = item.slices[sliceIndex]!;
    for (let attempt = 0; ; attempt++) {
      const outcome = await slice.submit(command());
      if (outcome.rejection !== 'sold_out' || attempt >= rebalanceAttemptsMax || item.slices.length === 1) return outcome;
      if (!(await this.rebalance(item, sliceIndex, quantity))) return outcome;
    }
  }

  /**
   * Moves stock to `receiverIndex` from its richest sibling; false when no sibling has any.
   * Buyers who arrive while a rebalance runs wait for the next one, which takes what all of
   * them asked for at once.
   */
  private async rebalance(item: ItemRuntime, receiverIndex: number, quantity: number): Promise<boolean> {
    item.demand.set(receiverIndex, (item.demand.get(receiverIndex) ?? 0) + quantity);
    for (;;) {
      const running = item.rebalancing.get(receiverIndex);
      if (running === undefined) break;
      const moved = await running;
      // Another buyer started the rebalance that took this buyer's demand too: its result is ours.
      if (!item.demand.has(receiverIndex)) return moved;
    }
    const demand = item.demand.get(receiverIndex) ?? quantity;
    item.demand.delete(receiverIndex);
    const rebalancing = this.takeFromSiblings(item, receiverIndex, demand).finally(() =>
      item.rebalancing.delete(receiverIndex),
    );
    item.rebalancing.set(receiverIndex, rebalancing);
    return rebalancing;
  }

  private async takeFromSiblings(item: ItemRuntime, receiverIndex: number, quantity: number): Promise<boolean> {
    const givers = item.slices
      .map((slice, index) => ({ index, available: slice.figures.available }))
      .filter((giver) => giver.index !== receiverIndex && giver.available > 0)
      .sort((left, right) => right.available - left.available);
    for (const giver of givers) {
      // Half of the giver's stock, so that a slice every buyer hashes to does not come back
      // for every unit, and the giver keeps enough for its own buyers.
      const wanted = Math.max(quantity, Math.ceil(giver.available / 2));
      const transferId = this.ids.next(String(receiverIndex));
      const given = await item.slices[giver.index]!.submit({
        kind: 'transfer_out',
        transferId,
        toSliceIndex: receiverIndex,
        quantity: wanted,
        nowMs: this.clock.now(),
      });
      const event = given.events[0];
      if (given.rejection !== null || event?.kind !== 'transferred_out') continue;
      return this.deliverTransfer(item, giver.index, receiverIndex, transferId, event.quantity);
    }
    return false;
  }

  /**
   * Takes a transfer in at the receiver, then settles it at the giver. While the receiver
   * cannot take it (storage down), it is retried in the background: the units stay counted as
   * in transfer and nothing is lost. True once the receiver holds the units.
   */
  private async deliverTransfer(
    item: ItemRuntime,
    giverIndex: number,
    receiverIndex: number,
    transferId: string,
    quantity: number,
  ): Promise<boolean> {
    const receiver = item.slices[receiverIndex];
    const giver = item.slices[giverIndex]!;
    if (receiver === undefined) throw new Error(`transfer ${transferId} names slice ${receiverIndex}, which does not exist`);
    for (;;) {
      const taken = await receiver.submit({
        kind: 'transfer_in',
        transferId,
        fromSliceIndex: giverIndex,
        quantity,
        nowMs: this.clock.now(),
      });
      if (taken.rejection === null) break;
      if (taken.rejection !== 'unavailable') {
        throw new Error(`slice ${receiverIndex} refused transfer ${transferId}: ${taken.rejection}`);
      }
      if (this.closed) return false;
      await new Promise((resolve) => setTimeout(resolve, transferRetryDelayMs));
    }
    // Settling only tidies the giver's list; a failure here is redone at the next start.
    await giver.submit({ kind: 'settle_transfer', transferId, nowMs: this.clock.now() });
    return true;
  }

  loadBlocklist(userIds: Iterable<string>): void {
    for (const userId of userIds) this.blocked.add(userId);
  }

  sliceChanged(sliceId: string, _figures: SliceFigures, events: readonly SliceEvent[]): void {
    if (events.length > 0) this.orderService.committed();
    const itemId = this.sliceItems.get(sliceId);
    if (itemId === undefined) return;
    for (const event of events) {
      // Counted from the commits themselves, in the same turn as the figures change, so the
      // item view balances at every moment. A transfer given before a restart is not counted
      // here; the start delivers it before the engine serves.
      if (event.kind === 'transferred_out') this.items.get(itemId)?.inTransfer.set(event.transferId, event.quantity);
      else if (event.kind === 'transferred_in') this.items.get(itemId)?.inTransfer.delete(event.transferId);
    }
    if (this.stockListeners.size === 0) return;
    this.changedItems.add(itemId);
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      const itemIds = [...this.changedItems];
      this.changedItems.clear();
      for (const changed of itemIds) {
        const view = this.itemView(changed);
        if (view === undefined) continue;
        for (const listener of this.stockListeners) listener(view);
      }
    });
  }

  private itemView(itemId: string): ItemView | undefined {
    const item = this.items.get(itemId);
    if (item === undefined) return undefined;
    let stock = 0;
    let available = 0;
    let reserved = 0;
    let sold = 0;
    for (const slice of item.slices) {
      const figures = slice.figures;
      stock += figures.stock;
      available += figures.available;
      reserved += figures.reserved;
      sold += figures.sold;
    }
    // Units on their way between two slices belong to neither, yet are on sale.
    for (const quantity of item.inTransfer.values()) {
      stock += quantity;
      available += quantity;
    }
    const { definition } = item;
    return {
      id: definition.id,
      name: definition.name,
      sellerId: definition.sellerId,
      stock,
      available,
      reserved,
      sold,
      perUserLimit: definition.perUserLimit,
      startsAt: definition.startsAt,
      endsAt: definition.endsAt,
      status: itemStatus(definition, available, this.clock.now()),
    };
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

/** Units on sale across the item's slices, counting those on their way between two slices. */
function availableOf(item: ItemRuntime): number {
  let available = 0;
  for (const slice of item.slices) available += slice.figures.available;
  for (const quantity of item.inTransfer.values()) available += quantity;
  return available;
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

/** Makes sure the database named in an embedded server's URL exists, and returns its URL. */
async function ensureDatabase(serverUrl: string, database: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrls: string[];
  if (options.databaseUrl === undefined) {
    embedded = await startEmbeddedPostgres({
      dataDirectory: path.resolve(options.dataDirectory ?? '.seckill'),
      // PostgreSQL's own chatter: there when asked for, not in every start's log.
      log: (line) => log('debug', line.trimEnd()),
    });
    // Like the seed service's `inventory` and `inventory2`: two inventory databases.
    databaseUrls = [
      await ensureDatabase(embedded.connectionString, 'seckill'),
      await ensureDatabase(embedded.connectionString, 'seckill_inventory2'),
    ];
  } else {
    databaseUrls = [options.databaseUrl, ...(options.extraInventoryDatabaseUrls ?? [])];
  }
  const embeddedUrl = embedded?.connectionString;
  const orderDatabaseUrls = await orderDatabaseUrlsFor(
    options,
    databaseUrls[0]!,
    embeddedUrl === undefined ? undefined : (name) => ensureDatabase(embeddedUrl, name),
  );
  let engineLock: EngineLock;
  try {
    engineLock = await takeEngineLock(databaseUrls, log);
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  const pools = databaseUrls.map((connectionString) => createPool({ connectionString, connectionsMax: 8 }));
  let runtime: SliceRuntime | undefined;
  let orderService: OrderService | undefined;
  try {
    for (const pool of pools) await migrate(pool);
    orderService = await OrderService.open({
      inventoryPools: pools,
      orderDatabaseUrls,
      tablesPerDatabase: options.orderTablesPerDatabase ?? tablesPerDatabaseDefault,
      clock,
      nodeId: options.nodeId ?? 0,
      historyAfterMs: options.orderHistoryAfterMs,
      historyBatchRows: options.orderHistoryBatchRows,
      historyIntervalMs: options.orderHistoryIntervalMs,
      pendingOrdersMax: options.pendingOrdersMax,
      orderWaitMs: options.orderWaitMs,
      onProjection: options.onProjection,
      beforeProjectionCommit: options.beforeProjectionCommit,
      log,
    });
    const catalog = new Catalog(pools);
    const items = await catalog.loadItems();
    let engine: Engine | undefined;
    const runtimeOptions = {
      clock,
      flushEventsMax: options.flushEventsMax,
      snapshotEvery: options.snapshotEvery,
      mailboxDepthMax: options.mailboxDepthMax,
      onFigures: (sliceId: string, figures: SliceFigures, events: readonly SliceEvent[]) =>
        engine?.sliceChanged(sliceId, figures, events),
      onFlush: options.onFlush,
      log,
    };
    runtime =
      (options.shards ?? 0) > 0
        ? new ShardedSlices(options.shards!, databaseUrls, {
            ...runtimeOptions,
            onShardRecovered: () =>
              void engine?.shardRecovered().catch((error: unknown) => log('error', 'settling transfers failed', error)),
          })
        : new InProcessSlices(pools, runtimeOptions);
    engine = new Engine(
      catalog,
      pools,
      runtime,
      new TokenSigner(await catalog.tokenSecret()),
      clock,
      embedded,
      options.nodeId ?? 0,
      log,
      options.defaultSlices ?? 1,
      engineLock,
      orderService,
    );
    engine.loadBlocklist(await catalog.blocklist());
    await Promise.all(items.map((item) => engine!.startItem(item.definition, item.slices)));
    orderService.start();
    return engine;
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    await orderService?.close().catch(() => undefined);
    await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    await engineLock.release();
    await embedded?.stop();
    throw error;
  }
}
