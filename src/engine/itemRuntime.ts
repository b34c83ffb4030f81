/**
 * An item as the engine runs it: its definition, the handles of its slices, the stock on its
 * way between two slices, and the item view computed from the slices' committed figures.
 */
import type { SliceHandle } from '../actors/sliceActor.js';
import type { SliceEvent } from '../domain/slice.js';
import { itemStatus, type ItemDefinition, type ItemView } from '../items.js';
import type { AdminItemView } from './types.js';

export interface ItemRuntime {
  /** Replaced whole when an administrator changes the item's window or limit. */
  definition: ItemDefinition;
  readonly slices: SliceHandle[];
  /** Units given out by one slice and not yet received by another, by transfer id. */
  readonly inTransfer: Map<string, number>;
  /** A running rebalance per receiving slice index, which concurrent buyers share. */
  readonly rebalancing: Map<number, Promise<boolean>>;
  /** Units wanted by the buyers waiting on the next rebalance of each receiving slice. */
  readonly demand: Map<number, number>;
}

export function newItemRuntime(definition: ItemDefinition, slices: SliceHandle[]): ItemRuntime {
  return { definition, slices, inTransfer: new Map(), rebalancing: new Map(), demand: new Map() };
}

/**
 * Counts the units in transfer from the commits themselves, in the same turn as the figures
 * change, so the item view balances at every moment. A transfer given before a restart is not
 * counted here; the start delivers it before the engine serves.
 */
export function trackTransfers(item: ItemRuntime, events: readonly SliceEvent[]): void {
  for (const event of events) {
    if (event.kind === 'transferred_out') item.inTransfer.set(event.transferId, event.quantity);
    else if (event.kind === 'transferred_in') item.inTransfer.delete(event.transferId);
  }
}

/** Units on sale across the item's slices, counting those on their way between two slices. */
export function availableOf(item: ItemRuntime): number {
  let available = 0;
  for (const slice of item.slices) available += slice.figures.available;
  for (const quantity of item.inTransfer.values()) available += quantity;
  return available;
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
    inTransfer: [...item.inTransfer.values()].reduce((sum, quantity) => sum + quantity, 0),
  };
}
