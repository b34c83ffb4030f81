/**
 * An item as the engine runs it: its definition, the handles of its slices, the transfers
 * being delivered between them, and the item view computed from the slices' committed
 * figures.
 */
import type { SliceHandle } from '../actors/sliceActor.js';
import { transferReceived } from '../domain/slice.js';
import { itemStatus, type ItemDefinition, type ItemView } from '../items.js';
import { ReservationIds } from './reservationIds.js';
import type { AdminItemView } from './types.js';

export interface ItemRuntime {
  /** Replaced whole when an administrator changes the item's window or limit. */
  definition: ItemDefinition;
  readonly slices: SliceHandle[];
  /** Reservation ids of each slice, by slice index. */
  readonly reservationIds: ReservationIds[];
  /** Transfers being delivered to their receivers, by transfer id; concurrent callers share one. */
  readonly deliveries: Map<string, Promise<boolean>>;
  /** A running rebalance per receiving slice index, which concurrent buyers share. */
  readonly rebalancing: Map<number, Promise<RebalanceResult>>;
  /** Units wanted by the buyers waiting on the next rebalance of each receiving slice. */
  readonly demand: Map<number, number>;
}

/**
 * What moving stock to a slice came to: `moved` (try the purchase again), `none` (no sibling
 * has stock, nothing is on its way: sold out for real), or `stuck` (stock is on its way and did
 * not arrive in time: the buyer hears `unavailable`, which is true, nothing changed for them).
 */
export type RebalanceResult = 'moved' | 'none' | 'stuck';

export function newItemRuntime(definition: ItemDefinition, slices: SliceHandle[]): ItemRuntime {
  return {
    definition,
    slices,
    reservationIds: slices.map(() => new ReservationIds()),
    deliveries: new Map(),
    rebalancing: new Map(),
    demand: new Map(),
  };
}

/**
 * Units given by one slice whose receiver's committed figures do not hold them yet. Computed
 * from committed figures alone, so it is right whatever became of the replies and events
 * between the two commits (a worker that died, a commit learnt late), and it balances the
 * view at every moment: the giver's figures lost the units exactly when its `outgoing` gained
 * them, and the receiver's gained them exactly when its `receivedFrom` did. A transfer made
 * before transfers were numbered counts until its giver settles it.
 */
export function unitsInTransfer(item: ItemRuntime): number {
  let units = 0;
  for (let giverIndex = 0; giverIndex < item.slices.length; giverIndex++) {
    for (const transfer of item.slices[giverIndex]!.figures.outgoing) {
      const receiver = item.slices[transfer.toSliceIndex];
      const arrived =
        receiver !== undefined &&
        transfer.sequence !== undefined &&
        transferReceived(receiver.figures.receivedFrom.get(giverIndex), transfer.sequence);
      if (!arrived) units += transfer.quantity;
    }
  }
  return units;
}

/**
 * Whether every slice of the item serves. A loop, not `every` with a closure: it is asked for
 * every buyer of a sold-out item.
 */
export function allServing(item: ItemRuntime): boolean {
  for (const slice of item.slices) if (!slice.serving) return false;
  return true;
}

/** Units on sale across the item's slices, counting those on their way between two slices. */
export function availableOf(item: ItemRuntime): number {
  let available = 0;
  for (const slice of item.slices) available += slice.figures.available;
  return available + unitsInTransfer(item);
}

/** The item view, from memory: the figures of the last committed change of each slice. */
export function viewOf(item: ItemRuntime, nowMs: number): ItemView {
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
  const inTransfer = unitsInTransfer(item);
  stock += inTransfer;
  available += inTransfer;
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
    status: itemStatus(definition, available, nowMs),
    reserveTtlMs: definition.reserveTtlMs,
    slices: definition.slices,
    challenge: definition.challenge,
    eligibility: definition.eligibility,
  };
}

/** The item view with each slice's figures and state, for an administrator. */
export function adminViewOf(item: ItemRuntime, nowMs: number): AdminItemView {
  return {
    ...viewOf(item, nowMs),
    sliceFigures: item.slices.map((slice, index) => {
      const { stock, available, reserved, sold } = slice.figures;
      return { index, stock, available, reserved, sold, serving: slice.serving };
    }),
    inTransfer: unitsInTransfer(item),
  };
}
