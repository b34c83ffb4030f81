/**
 * Stock moving between the slices of one item. A purchase that finds its slice short while a
 * sibling still has stock takes some of the sibling's through a journaled transfer: the giver
 * commits `transferred_out`, the receiver commits `transferred_in` (idempotent by transfer
 * id), and the giver then settles the transfer. A crash between the steps leaves the units
 * counted as in transfer, and the next start (or a shard's recovery) delivers them.
 */
import type { SliceOutcome } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import type { SliceCommand } from '../domain/slice.js';
import type { IdGenerator } from '../ids.js';
import type { ItemRuntime } from './itemRuntime.js';

/**
 * Times a purchase is retried on its slice after stock was moved there from a sibling. A
 * purchase gives up early only when no sibling has stock left; this bound only guards against
 * a bug that would keep moving stock around forever.
 */
const rebalanceAttemptsMax = 10_000;
const transferRetryDelayMs = 200;

export class Transfers {
  constructor(
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly isClosed: () => boolean,
  ) {}

  /**
   * Submits a purchase to its slice. When the slice has too little stock while its siblings
   * still have some, stock is moved to it through a journaled transfer and the purchase is
   * tried again, so the item answers `sold_out` only when no slice has the stock.
   */
  async submitWithRebalance(
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
   * Delivers every transfer a slice of the item gave away and did not settle: after a crash
   * between the giver's commit and the receiver's, the units are still in transfer. Delivery
   * is idempotent at the receiver, so a transfer that did arrive is only settled.
   */
  async settle(item: ItemRuntime): Promise<void> {
    for (const [giverIndex, giver] of item.slices.entries()) {
      for (const transfer of giver.figures.outgoing) {
        await this.deliver(item, giverIndex, transfer.toSliceIndex, transfer.transferId, transfer.quantity);
      }
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
      return this.deliver(item, giver.index, receiverIndex, transferId, event.quantity);
    }
    return false;
  }

  /**
   * Takes a transfer in at the receiver, then settles it at the giver. While the receiver
   * cannot take it (storage down), it is retried in the background: the units stay counted as
   * in transfer and nothing is lost. True once the receiver holds the units.
   */
  private async deliver(
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
      if (this.isClosed()) return false;
      await new Promise((resolve) => setTimeout(resolve, transferRetryDelayMs));
    }
    // Settling only tidies the giver's list; a failure here is redone at the next start.
    await giver.submit({ kind: 'settle_transfer', transferId, nowMs: this.clock.now() });
    return true;
  }
}
