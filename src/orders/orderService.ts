/**
 * Everything about orders after the sale's decision, in one place for the engine: order ids,
 * the order databases, the projector that fills them from the journals, read-your-writes, the
 * paged queries, the history job, and cancelling a confirmed order.
 *
 * What it promises:
 * - A buyer's query holds every order this engine has acknowledged to that buyer, however far
 *   the projection lags (pendingOrders.ts); otherwise it answers `unavailable`, never a list
 *   that leaves one out. A seller's query may lag behind by the projection lag.
 * - A cancellation goes through the order's slice and its journal like any other change; it
 *   is answered once it has committed, and once the projection shows it where it can (bounded
 *   by `orderWaitMs`). Cancelling a cancelled order changes nothing.
 */
import type pg from 'pg';
import type { SliceHandle } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import { HistoryMover, type HistoryRun } from './history.js';
import { OrderDatabases } from './orderDatabases.js';
import { OrderIdGenerator } from './orderIdGenerator.js';
import { isOrderId } from './orderIds.js';
import {
  OrderQueries,
  decodeCursor,
  encodeCursor,
  isAfterCursor,
  newestFirst,
  orderPageSizeMax,
  type OrderPage,
  type OrderView,
  type PageRequest,
} from './orderQueries.js';
import { PendingOrders, pendingOrdersMaxDefault } from './pendingOrders.js';
import { MomentCounter, Projector, type ProjectionReport } from './projector.js';
import type { SliceFacts } from './projectionRows.js';

export type OrderResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: 'invalid' | 'not_found' | 'conflict' | 'unavailable'; readonly message: string };

export interface OrderServiceOptions {
  /** The inventory databases, whose journals hold the orders. */
  readonly inventoryPools: readonly pg.Pool[];
  /** Order database `n` is at `orderDatabaseUrls[n]`. */
  readonly orderDatabaseUrls: readonly string[];
  readonly tablesPerDatabase: number;
  readonly clock: Clock;
  readonly nodeId: number;
  readonly historyAfterMs?: number | undefined;
  readonly historyBatchRows?: number | undefined;
  readonly historyIntervalMs?: number | undefined;
  readonly pendingOrdersMax?: number | undefined;
  /** How long a query or a cancellation waits for the projection at most. */
  readonly orderWaitMs?: number | undefined;
  readonly eventsPerBatchMax?: number | undefined;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
  readonly onProjection?: ((report: ProjectionReport) => void) | undefined;
  /** For fault drills: runs inside each projection batch's transaction, before its commit. */
  readonly beforeProjectionCommit?: ((orderDatabaseIndex: number) => Promise<void>) | undefined;
}

export const orderWaitMsDefault = 10_000;
const closeProjectionWaitMs = 5_000;

export class OrderService {
  private readonly queries: OrderQueries;
  private readonly pending: PendingOrders;
  private readonly moments: MomentCounter;
  private readonly projector: Projector;
  private readonly history: HistoryMover;
  private readonly startMoment: number;
  private started = false;

  private constructor(
    private readonly databases: OrderDatabases,
    readonly ids: OrderIdGenerator,
    private readonly options: OrderServiceOptions,
  ) {
    this.queries = new OrderQueries(databases);
    this.moments = new MomentCounter();
    this.startMoment = this.moments.next();
    this.pending = new PendingOrders(options.pendingOrdersMax ?? pendingOrdersMaxDefault, this.startMoment);
    this.projector = new Projector({
      sources: options.inventoryPools,
      orderDatabases: databases,
      clock: options.clock,
      moments: this.moments,
      eventsPerBatchMax: options.eventsPerBatchMax,
      log: options.log,
      onBatch: options.onProjection,
      beforeCommit: options.beforeProjectionCommit,
    });
    this.projector.onProgress = (through) => this.pending.projectedThrough(through);
    this.history = new HistoryMover({
      databases,
      clock: options.clock,
      historyAfterMs: options.historyAfterMs,
      historyBatchRows: options.historyBatchRows,
      historyIntervalMs: options.historyIntervalMs,
      log: options.log,
    });
  }

  /** Opens and lays out the order databases and takes a first lease of order id ticks. */
  static async open(options: OrderServiceOptions): Promise<OrderService> {
    const databases = await OrderDatabases.open(options.orderDatabaseUrls, options.tablesPerDatabase);
    try {
      const ids = await OrderIdGenerator.start({
        store: databases,
        clock: options.clock,
        node: options.nodeId,
        onRenewalFailure: (error) => options.log('error', 'renewing the lease of order id ticks failed', error),
      });
      return new OrderService(databases, ids, options);
    } catch (error) {
      await databases.close().catch(() => undefined);
      throw error;
    }
  }

  /** Starts projecting and the history job; call once the slices known at start are added. */
  start(): void {
    this.started = true;
    this.projector.start();
    this.history.start();
  }

  /** Projects this slice's journal (on inventory database `sourceIndex`) from now on. */
  addSlice(sliceId: string, sourceIndex: number, facts: SliceFacts): void {
    this.projector.addSlice(sliceId, sourceIndex, facts);
  }

  /** Events were committed: the projector looks at once. */
  committed(): void {
    this.projector.wake();
  }

  /** An order was just acknowledged to its buyer. */
  acknowledged(view: OrderView): void {
    this.pending.add(view, this.moments.next());
  }

  /** True once the projection holds everything the journals held when the engine started. */
  get caughtUpSinceStart(): boolean {
    return this.projector.projectedThrough > this.startMoment;
  }

  /** Events committed to the journals and not yet in some order database. */
  get projectionLagEvents(): number {
    return this.projector.lagEvents;
  }

  /** While the projection is behind, how long ago the oldest order of its latest batch was decided; 0 when caught up. */
  get projectionLagMs(): number {
    return this.projector.lagMs;
  }

  /** Orders acknowledged and kept in memory until the projection has them. */
  get pendingOrders(): number {
    return this.pending.size;
  }

  /** A buyer's orders, newest first: the tables merged with what is acknowledged and not yet projected. */
  async buyerPage(userId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    const parsed = parsePage(request);
    if (!parsed.ok) return parsed;
    const { cursor, limit } = parsed.value;
    // Taken before the tables are read: an order forgotten here in between is in the tables by then.
    const kept = this.pending.ofBuyer(userId);
    if (!(await this.projector.whenProjected(this.pending.mustProjectThrough + 1, this.waitMs))) {
      return unavailable('the order projection is behind; try again');
    }
    const stored = await this.read(() => this.queries.page('buyer', userId, cursor, limit));
    if (!stored.ok) return stored;
    // An order can be kept twice: a purchase retried with its key is acknowledged again, with
    // the original order. Each order is listed once.
    const shown = new Set(stored.value.map((view) => view.orderId));
    const merged = [...stored.value];
    for (const view of kept) {
      if (shown.has(view.orderId) || !isAfterCursor(view, cursor)) continue;
      shown.add(view.orderId);
      merged.push(view);
    }
    merged.sort(newestFirst);
    return { ok: true, value: pageOf(merged.slice(0, limit), limit) };
  }

  /**
   * A seller's orders, newest first. The query first waits (up to `orderWaitMs`) for the
   * projection to take in what was committed before it; past that it answers with what the
   * tables hold, which lags by at most the projection lag.
   */
  async sellerPage(sellerId: string, request: PageRequest): Promise<OrderResult<OrderPage>> {
    const parsed = parsePage(request);
    if (!parsed.ok) return parsed;
    const { cursor, limit } = parsed.value;
    await this.projector.whenProjected(this.moments.next(), this.waitMs);
    const stored = await this.read(() => this.queries.page('seller', sellerId, cursor, limit));
    return stored.ok ? { ok: true, value: pageOf(stored.value, limit) } : stored;
  }

  /**
   * Cancels a confirmed order through its slice: its stock goes back on sale, its buyer's limit
   * is freed, and it shows `cancelled` in both dimensions. A cancelled order stays as it is.
   */
  async cancel(orderId: string, sliceOf: (sliceId: string) => SliceHandle | undefined): Promise<OrderResult<OrderView>> {
    if (!isOrderId(orderId)) return { ok: false, error: 'invalid', message: 'the order id must be a positive 64-bit integer' };
    // The order may have been acknowledged a moment ago: find it once the projection has it.
    if (!(await this.projector.whenProjected(this.moments.next(), this.waitMs))) {
      return unavailable('the order projection is behind; try again');
    }
    const found = await this.read(() => this.queries.find(orderId));
    if (!found.ok) return found;
    if (found.value === undefined) return { ok: false, error: 'not_found', message: `no order ${orderId}` };
    const { sliceId, ...order } = found.value;
    if (order.status === 'cancelled') return { ok: true, value: order };
    const slice = sliceOf(sliceId);
    if (slice === undefined) return { ok: false, error: 'conflict', message: `order ${orderId} belongs to a slice this engine does not serve` };
    const outcome = await slice.submit({
      kind: 'cancel_order',
      orderId,
      userId: order.userId,
      quantity: order.qty,
      nowMs: this.options.clock.now(),
    });
    if (outcome.rejection === 'unavailable') return unavailable('storage is unavailable; the order was not cancelled');
    if (outcome.rejection !== null) {
      this.options.log('error', `order ${orderId}: its slice refused the cancellation (${outcome.rejection})`);
      return { ok: false, error: 'conflict', message: `the order's slice refused the cancellation: ${outcome.rejection}` };
    }
    // Committed: the answer is true from here on. Waiting lets the caller read it back at once.
    if (!(await this.projector.whenProjected(this.moments.next(), this.waitMs))) {
      this.options.log('warn', `order ${orderId} is cancelled; its projection lags and will show it later`);
    }
    return { ok: true, value: { ...order, status: 'cancelled' } };
  }

  /** The order as the seller dimension holds it: for tests and the replay tool. */
  sellerView(orderId: string, sellerId: string): Promise<OrderView | undefined> {
    return this.queries.findForSeller(orderId, sellerId);
  }

  /** Runs the history job now, to its end (it also runs on its own every `historyIntervalMs`). */
  moveHistory(): Promise<HistoryRun> {
    return this.history.run();
  }

  /** Resolves true once everything committed so far is projected, false after `timeoutMs`. */
  whenProjected(timeoutMs = this.waitMs): Promise<boolean> {
    return this.projector.whenProjected(this.moments.next(), timeoutMs);
  }

  /** Holds the projection back (a drill, or a test of a lagging projection) until `resumeProjection`. */
  pauseProjection(): Promise<void> {
    return this.projector.pause();
  }

  resumeProjection(): void {
    this.projector.resume();
  }

  reachable(): Promise<boolean> {
    return this.databases.reachable();
  }

  /**
   * Stops the history job and the projector, once the projection has taken in what is
   * committed (for up to `closeProjectionWaitMs`), so that a clean stop leaves it caught up.
   */
  async close(): Promise<void> {
    await this.history.stop();
    if (this.started && !(await this.projector.whenProjected(this.moments.next(), closeProjectionWaitMs))) {
      this.options.log('warn', `the order projection did not catch up within ${closeProjectionWaitMs} ms; it carries on at the next start`);
    }
    await this.projector.close();
    await this.databases.close();
  }

  private get waitMs(): number {
    return this.options.orderWaitMs ?? orderWaitMsDefault;
  }

  private async read<T>(query: () => Promise<T>): Promise<OrderResult<T>> {
    try {
      return { ok: true, value: await query() };
    } catch (error) {
      this.options.log('error', 'reading orders failed', error);
      return unavailable('storage cannot answer now');
    }
  }
}

function unavailable(message: string): { ok: false; error: 'unavailable'; message: string } {
  return { ok: false, error: 'unavailable', message };
}

function parsePage(request: PageRequest): OrderResult<{ cursor: ReturnType<typeof decodeCursor>; limit: number }> {
  const limit = request.limit ?? orderPageSizeMax;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > orderPageSizeMax) {
    return { ok: false, error: 'invalid', message: `limit must be an integer from 1 to ${orderPageSizeMax}` };
  }
  if (request.cursor === undefined) return { ok: true, value: { cursor: null, limit } };
  const cursor = decodeCursor(request.cursor);
  if (cursor === null) return { ok: false, error: 'invalid', message: 'cursor must be the `next` of an earlier page' };
  return { ok: true, value: { cursor, limit } };
}

function pageOf(orders: OrderView[], limit: number): OrderPage {
  const last = orders.at(-1);
  return { orders, next: orders.length === limit && last !== undefined ? encodeCursor(last) : null };
}
