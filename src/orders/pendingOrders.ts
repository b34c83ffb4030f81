/**
 * Read your own writes. A buyer told `order` must find that order in their next query, even
 * while the projector has not written it yet. Every order this engine acknowledges is kept here
 * until a projection pass that started after the acknowledgement has completed (then it is in
 * the buyer's table), and a buyer's query merges in the buyer's orders kept here.
 *
 * Memory is bounded by `pendingOrdersMax`. Past it, orders are not kept; the engine then
 * remembers the moment, and a buyer's query waits until the projection has passed it instead
 * of answering from memory. No answer ever leaves out an acknowledged order: it is served from
 * here, or from the tables once they have it, or the query says it cannot answer now. The
 * engine starts in that state, since the orders of a previous run are in no one's memory.
 */
import type { OrderView } from './orderQueries.js';

export const pendingOrdersMaxDefault = 500_000;

/**
 * The kept orders as columns, oldest first, from `start`: one array slot per field and order,
 * rather than an object graph per order. Hundreds of thousands of orders are kept while the
 * projector catches up under load, and every major garbage collection walks what is kept
 * (docs/hotpath.md): columns hold the same in fewer, smaller objects.
 */
export class PendingOrders {
  private orderIds: string[] = emptied(['']);
  private itemIds: string[] = emptied(['']);
  private userIds: string[] = emptied(['']);
  private sellerIds: string[] = emptied(['']);
  private quantities: number[] = emptied([1]);
  private statuses: OrderView['status'][] = emptied(['confirmed']);
  /** Milliseconds since 1970: past the small integers V8 keeps unboxed, so a column of doubles. */
  private createdAts: number[] = emptied([0.5]);
  private moments: number[] = emptied([1]);
  /** Column position of the oldest kept order. */
  private start = 0;
  /** Absolute number of the order at column position 0; columns are cut from the front now and then. */
  private base = 0;
  /** Each buyer's kept orders, by absolute number, oldest first: one number, or several. */
  private readonly byBuyer = new Map<string, number | number[]>();
  /** The moment of the latest order that was not kept: answers must wait for the projection to pass it. */
  private unkeptThrough: number;

  constructor(
    private readonly pendingOrdersMax: number,
    /** The moment the engine started: orders acknowledged before it are not kept. */
    startMoment: number,
  ) {
    this.unkeptThrough = startMoment;
  }

  /** Keeps an order just acknowledged, at `moment`. */
  add(view: OrderView, moment: number): void {
    if (this.size >= this.pendingOrdersMax) {
      this.unkeptThrough = moment;
      return;
    }
    const number = this.base + this.orderIds.length;
    this.orderIds.push(view.orderId);
    this.itemIds.push(view.itemId);
    this.userIds.push(view.userId);
    this.sellerIds.push(view.sellerId);
    this.quantities.push(view.qty);
    this.statuses.push(view.status);
    this.createdAts.push(view.createdAt);
    this.moments.push(moment);
    const kept = this.byBuyer.get(view.userId);
    if (kept === undefined) this.byBuyer.set(view.userId, number);
    else if (typeof kept === 'number') this.byBuyer.set(view.userId, [kept, number]);
    else kept.push(number);
  }

  get size(): number {
    return this.orderIds.length - this.start;
  }

  /** The moment the projection must have passed before an answer may rely on the tables and this memory alone. */
  get mustProjectThrough(): number {
    return this.unkeptThrough;
  }

  /** The buyer's kept orders, as they were acknowledged. */
  ofBuyer(userId: string): OrderView[] {
    const kept = this.byBuyer.get(userId);
    if (kept === undefined) return [];
    return (typeof kept === 'number' ? [kept] : kept).map((number) => this.viewAt(number - this.base));
  }

  private viewAt(position: number): OrderView {
    return {
      orderId: this.orderIds[position]!,
      itemId: this.itemIds[position]!,
      userId: this.userIds[position]!,
      sellerId: this.sellerIds[position]!,
      qty: this.quantities[position]!,
      status: this.statuses[position]!,
      createdAt: this.createdAts[position]!,
    };
  }

  /** Forgets the orders acknowledged before `moment`: a completed projection pass holds them. */
  projectedThrough(moment: number): void {
    while (this.start < this.orderIds.length && this.moments[this.start]! < moment) {
      const userId = this.userIds[this.start]!;
      const kept = this.byBuyer.get(userId);
      // A buyer's orders are kept in moment order too, so the oldest is first.
      if (typeof kept === 'number' || kept === undefined || kept.length <= 1) this.byBuyer.delete(userId);
      else {
        kept.shift();
        if (kept.length === 1) this.byBuyer.set(userId, kept[0]!);
      }
      this.start++;
    }
    // Cuts the forgotten front off now and then, so it does not keep memory.
    if (this.start > 1_024 && this.start * 2 > this.orderIds.length) {
      const cut = this.start;
      this.orderIds = this.orderIds.slice(cut);
      this.itemIds = this.itemIds.slice(cut);
      this.userIds = this.userIds.slice(cut);
      this.sellerIds = this.sellerIds.slice(cut);
      this.quantities = this.quantities.slice(cut);
      this.statuses = this.statuses.slice(cut);
      this.createdAts = this.createdAts.slice(cut);
      this.moments = this.moments.slice(cut);
      this.base += cut;
      this.start = 0;
    }
  }
}

/**
 * A column emptied of the one value it was made with, so that its V8 elements kind is already
 * the one its values give it: a new `[]` holds small integers until its first other value. The
 * engine a server serves with is not the first to keep orders (the rehearsal's was,
 * src/server/rehearsal.ts), and the code compiled for the filled columns of the earlier one was
 * thrown away at the first order of a new one (`--trace-deopt`: "wrong map" at a column's
 * length, in the order path of a server's first sale) and compiled again during that sale. Each
 * column has its own literal: V8 would give every array made at one shared literal the kind of
 * the most general one.
 */
function emptied<T>(column: T[]): T[] {
  column.pop();
  return column;
}
