/**
 * The simulation's final checks, run once the engine has settled and recovered: `unavailable`
 * only where nothing changed, and the sequential model of each item.
 */
import { evolve, initialState, type SliceEvent } from '../domain/slice.js';
import type { MemoryJournalStore } from './memoryJournalStore.js';
import type { Request } from './simulate.js';
import type { SimulatedItem } from './world.js';

/**
 * `unavailable` only where nothing changed: a buy told so left no order in the store, and a
 * restock told so left none of its shares.
 */
export function checkUnavailable(requests: readonly Request[], store: MemoryJournalStore, stop: (invariant: string, detail: string) => never): void {
  const orders = new Set<string>();
  const restocks = new Set<string>();
  for (const sliceId of store.sliceIds()) {
    for (const { event } of store.eventsOf(sliceId)) {
      if (event.kind === 'purchased') orders.add(event.orderId);
      if (event.kind === 'restocked' && event.restockId !== undefined) restocks.add(event.restockId);
    }
  }
  for (const request of requests) {
    if (request.kind === 'restock' && request.outcome === 'unavailable' && restocks.has(request.idempotencyKey!)) {
      stop('unavailable only where nothing changed', `restock #${request.number} was told unavailable (nothing applied), and a share of it is stored`);
    }
  }
  for (const request of requests) {
    if (request.kind === 'buy' && request.outcome === 'unavailable' && request.orderId !== undefined && request.idempotencyKey === undefined && orders.has(request.orderId)) {
      stop('unavailable only where nothing changed', `#${request.number} was told unavailable, and its order ${request.orderId} is stored`);
    }
  }
}

/**
 * The sequential model of an item: a counter of units on sale (committed, plus those on their
 * way between slices), decremented by orders and reservations, added back by cancellations,
 * expiries and restocks. A `sold_out` is true only if, at some moment between the request and
 * its answer, the counter was below the quantity asked for: the moment the refusal linearizes.
 * It is read after every event of the store's log, each event placed at the commit that wrote it.
 */
export function checkSoldOut(
  requests: readonly Request[],
  items: readonly SimulatedItem[],
  log: readonly { commit: number; sliceId: string; sequence: number; event: SliceEvent }[],
  stop: (invariant: string, detail: string) => never,
): void {
  const itemOfSlice = new Map<string, string>();
  for (const item of items) for (const sliceId of item.sliceIds) itemOfSlice.set(sliceId, item.definition.id);
  const states = new Map(items.flatMap((item) => item.sliceIds.map((sliceId) => [sliceId, initialState()] as const)));
  const given = new Map<string, number>();
  const taken = new Map<string, number>();
  /** For each item, the counter after each event: [the commit that wrote it, units]. */
  const history = new Map<string, [number, number][]>(items.map((item) => [item.definition.id, []]));
  const unitsOf = (itemId: string): number => {
    let units = 0;
    for (const item of items) {
      if (item.definition.id !== itemId) continue;
      for (const sliceId of item.sliceIds) units += states.get(sliceId)!.available;
    }
    let moving = 0;
    for (const [transferId, quantity] of given) if (transferId.startsWith(`${itemId}:`) && !taken.has(transferId)) moving += quantity;
    return units + moving;
  };
  for (const entry of log) {
    const state = states.get(entry.sliceId)!;
    try {
      evolve(state, entry.event);
    } catch {
      // An oversell; the step checks report it.
    }
    const itemId = itemOfSlice.get(entry.sliceId)!;
    if (entry.event.kind === 'transferred_out') given.set(`${itemId}:${entry.event.transferId}`, entry.event.quantity);
    if (entry.event.kind === 'transferred_in') taken.set(`${itemId}:${entry.event.transferId}`, entry.event.quantity);
    // After every event, not only after every commit: a batch may take the last unit and then
    // restock, and a refusal may linearize between the two.
    history.get(itemId)!.push([entry.commit, unitsOf(itemId)]);
  }
  for (const request of requests) {
    if (request.outcome !== 'sold_out' || (request.kind !== 'buy' && request.kind !== 'reserve') || request.repliedAtCommit === undefined) continue;
    const points = history.get(request.itemId)!;
    // The counter as it stood when the request was made, then after every commit until its answer.
    let atInvocation = 0;
    for (const [commit, units] of points) if (commit <= request.invokedAtCommit) atInvocation = units;
    let lowest = atInvocation;
    for (const [commit, units] of points) if (commit > request.invokedAtCommit && commit <= request.repliedAtCommit) lowest = Math.min(lowest, units);
    if (lowest >= request.quantity) {
      stop('sold_out only when sold out (sequential model)', `#${request.number} asked for ${request.quantity} of item ${request.itemId} and was told sold_out, but at least ${lowest} units were on sale from its request (commit ${request.invokedAtCommit}) to its answer (commit ${request.repliedAtCommit})`);
    }
  }
}
