/**
 * Issues order ids (layout in orderIds.ts) that never repeat: not while the process runs, not
 * across restarts, not when the clock steps backwards in between, and not between engines that
 * share the order databases.
 *
 * Ticks are leased from a high-water mark stored in PostgreSQL (`MarkStore`). A lease is a
 * range of ticks `[start, end)` that the store hands out at most once: `start` is at least
 * the stored mark and at least the tick the caller asks for, and the store moves the mark to
 * `end` in the same statement. The generator issues ticks only inside its lease, so an id of
 * a previous run (or of another engine with the same node number) lies below a mark that the
 * next lease starts from, whatever the clock says.
 *
 * The lease is renewed in the background when half of it is used, so an id is a synchronous
 * call on the hot path; only when the lease runs out before a renewal commits (after an idle
 * spell longer than half a lease, or with storage down) does a caller wait (`whenLeased`).
 */
import type { Clock } from '../clock.js';
import { composeOrderId, lastTwoDigits, nodeIdMax, tickAt } from './orderIds.js';

export interface TickLease {
  /** The first tick of the lease. */
  readonly start: number;
  /** One past the last tick of the lease: the stored mark after this lease. */
  readonly end: number;
}

/** Where the high-water mark lives; `lease` is one atomic statement. */
export interface MarkStore {
  /** Hands out `[max(mark, floor), max(mark, floor) + length)` and stores its end as the mark. */
  lease(node: number, floor: number, length: number): Promise<TickLease>;
}

/**
 * Ticks per lease. A lease of a million ticks lasts 16 minutes at one id per millisecond and
 * 10 s at 100,000 ids/s; a restart skips what is left of it, which moves ids ahead of the
 * clock by at most that much.
 */
export const leaseTicksDefault = 1_000_000;

export class OrderIdGenerator {
  private lastTick = 0;
  private lease: TickLease = { start: 0, end: 0 };
  private renewing: Promise<void> | null = null;

  private constructor(
    private readonly store: MarkStore,
    private readonly clock: Clock,
    private readonly node: number,
    private readonly leaseTicks: number,
    private readonly onRenewalFailure: (error: unknown) => void,
  ) {}

  /** Takes a first lease, so ids are ready once this resolves. */
  static async start(options: {
    store: MarkStore;
    clock: Clock;
    node: number;
    leaseTicks?: number;
    onRenewalFailure?: (error: unknown) => void;
  }): Promise<OrderIdGenerator> {
    const { node } = options;
    if (!Number.isInteger(node) || node < 0 || node > nodeIdMax) throw new RangeError(`node id ${node} is not in 0..99`);
    const generator = new OrderIdGenerator(
      options.store,
      options.clock,
      node,
      options.leaseTicks ?? leaseTicksDefault,
      options.onRenewalFailure ?? (() => undefined),
    );
    await generator.renew();
    return generator;
  }

  /**
   * The next order id for this buyer and seller, or `undefined` when the lease is used up and
   * a renewal must commit first (`whenLeased`).
   */
  tryNext(buyerId: string, sellerId: string): string | undefined {
    const tick = Math.max(this.lastTick + 1, tickAt(this.clock.now()));
    if (tick >= this.lease.end) {
      void this.renewInBackground();
      return undefined;
    }
    this.lastTick = tick;
    if (tick >= this.lease.end - this.leaseTicks / 2) void this.renewInBackground();
    return composeOrderId({ tick, node: this.node, buyerDigits: lastTwoDigits(buyerId), sellerDigits: lastTwoDigits(sellerId) });
  }

  /** Resolves once a renewal has committed; rejects when the store could not be reached. */
  whenLeased(): Promise<void> {
    return this.renewing ?? this.renew();
  }

  private renewInBackground(): Promise<void> {
    return (this.renewing ?? this.renew()).catch(this.onRenewalFailure);
  }

  private renew(): Promise<void> {
    // Asking for the tick right after the current lease keeps leases contiguous while no one
    // else leases in between; asking for at least the clock's tick keeps ids near the clock.
    const floor = Math.max(this.lease.end, this.lastTick + 1, tickAt(this.clock.now()));
    const renewing = this.store.lease(this.node, floor, this.leaseTicks).then(
      (lease) => {
        // A lease that does not follow on from the current one means another engine leased
        // the ticks in between: skip them.
        if (lease.start > this.lease.end) this.lastTick = Math.max(this.lastTick, lease.start - 1);
        this.lease = lease;
      },
    ).finally(() => {
      this.renewing = null;
    });
    this.renewing = renewing;
    return renewing;
  }
}
