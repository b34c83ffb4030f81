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

interface Pending {
  readonly view: OrderView;
  readonly moment: number;
}

export class PendingOrders {
  private readonly byBuyer = new Map<string, Pending[]>();
  /** Every kept order, in moment order, so pruning starts at the oldest. */
  private queue: Pending[] = [];
  private queueStart = 0;
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
    const pending = { view, moment };
    this.queue.push(pending);
    const buyer = this.byBuyer.get(view.userId);
    if (buyer === undefined) this.byBuyer.set(view.userId, [pending]);
    else buyer.push(pending);
  }

  get size(): number {
    return this.queue.length - this.queueStart;
  }

  /** The moment the projection must have passed before an answer may rely on the tables and this memory alone. */
  get mustProjectThrough(): number {
    return this.unkeptThrough;
  }

  /** The buyer's kept orders, as they were acknowledged. */
  ofBuyer(userId: string): OrderView[] {
    return (this.byBuyer.get(userId) ?? []).map((pending) => pending.view);
  }

  /** Forgets the orders acknowledged before `moment`: a completed projection pass holds them. */
  projectedThrough(moment: number): void {
    while (this.queueStart < this.queue.length && this.queue[this.queueStart]!.moment < moment) {
      const pending = this.queue[this.queueStart++]!;
      const buyer = this.byBuyer.get(pending.view.userId);
      // A buyer's orders are kept in moment order too, so the oldest is first.
      if (buyer !== undefined) {
        buyer.shift();
        if (buyer.length === 0) this.byBuyer.delete(pending.view.userId);
      }
    }
    // Compacts now and then, so the queue's forgotten head does not keep memory.
    if (this.queueStart > 1_024 && this.queueStart * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueStart);
      this.queueStart = 0;
    }
  }
}
