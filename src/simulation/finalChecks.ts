/**
 * The simulation's final checks, run once the engine has settled and recovered: `unavailable`
 * only where nothing changed, and the sequential model of each item and buyer.
 */
import { evolve, initialState, type SliceEvent } from '../domain/slice.js';
import { sliceIndexFor } from '../items.js';
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
 * What a `confirm` or `cancel` was told about its reservation, against the store (each
 * reservation is confirmed or cancelled by at most one request of the workload):
 * - `unavailable`: nothing changed, so the store holds no confirmation or cancellation of it;
 * - `token_expired`: the store holds its expiry, committed by the time of the answer;
 * - `token_used`: the store holds its confirmation or cancellation, committed by then.
 * And no reservation in the store expired before its time.
 */
export function checkReservationAnswers(
  requests: readonly Request[],
  items: readonly SimulatedItem[],
  log: readonly LoggedEvent[],
  stop: (invariant: string, detail: string) => never,
): void {
  const places = slicePlaces(items);
  /** The first commit of each kind of closing event, by item, slice and reservation id. */
  const closedAt = new Map<string, number>();
  const expiresAt = new Map<string, number>();
  for (const { commit, sliceId, event } of log) {
    if (event.kind !== 'reserved' && event.kind !== 'confirmed' && event.kind !== 'cancelled' && event.kind !== 'expired') continue;
    const { item, index } = places.get(sliceId)!;
    const reservation = `${item.definition.id}/${index}/${event.reservationId}`;
    if (event.kind === 'reserved') {
      expiresAt.set(reservation, event.expiresAt);
      continue;
    }
    const due = expiresAt.get(reservation);
    if (event.kind === 'expired' && due !== undefined && event.atMs < due) {
      stop('a reservation expires only once its time is up', `reservation ${event.reservationId} of slice ${sliceId} expired at ${event.atMs}, before ${due}`);
    }
    if (!closedAt.has(`${reservation} ${event.kind}`)) closedAt.set(`${reservation} ${event.kind}`, commit);
  }
  for (const request of requests) {
    if ((request.kind !== 'confirm' && request.kind !== 'cancel') || request.reservationId === undefined || request.repliedAtCommit === undefined) continue;
    const reservation = `${request.itemId}/${request.sliceIndex}/${request.reservationId}`;
    const committedBy = (kind: string): boolean => (closedAt.get(`${reservation} ${kind}`) ?? Infinity) <= request.repliedAtCommit!;
    const described = `#${request.number} (${request.kind} of reservation ${request.reservationId} of item ${request.itemId})`;
    if (request.outcome === 'unavailable' && closedAt.has(`${reservation} ${request.kind === 'confirm' ? 'confirmed' : 'cancelled'}`)) {
      stop('unavailable only where nothing changed', `${described} was told unavailable, and the store holds its ${request.kind === 'confirm' ? 'confirmation' : 'cancellation'}`);
    }
    if (request.outcome === 'token_expired' && !committedBy('expired')) {
      stop('token_expired only once expired', `${described} was told token_expired, and the store held no expiry of it at commit ${request.repliedAtCommit}`);
    }
    if (request.outcome === 'token_used' && !committedBy('confirmed') && !committedBy('cancelled')) {
      stop('token_used only once used', `${described} was told token_used, and the store held no confirmation or cancellation of it at commit ${request.repliedAtCommit}`);
    }
  }
}

/**
 * A `buy` retried with its idempotency key gets what the first one came to: once the store holds
 * the order of a user's key (committed before the retry was made), the retry is answered with
 * that order, or `unavailable` (nothing changed), never a refusal such as `sold_out`; and no key
 * ever makes two orders.
 */
export function checkRetries(
  requests: readonly Request[],
  items: readonly SimulatedItem[],
  log: readonly LoggedEvent[],
  stop: (invariant: string, detail: string) => never,
): void {
  const places = slicePlaces(items);
  /** The order each key made, and the commit that stored it, by item, user and key. */
  const orders = new Map<string, { orderId: string; commit: number }>();
  for (const { commit, sliceId, event } of log) {
    if (event.kind !== 'purchased' || event.idempotencyKey === undefined) continue;
    const key = `${places.get(sliceId)!.item.definition.id} ${event.userId} ${event.idempotencyKey}`;
    const earlier = orders.get(key);
    if (earlier !== undefined) {
      stop('one order per idempotency key', `user ${event.userId}'s key ${event.idempotencyKey} made order ${earlier.orderId} and then order ${event.orderId}`);
    }
    orders.set(key, { orderId: event.orderId, commit });
  }
  for (const request of requests) {
    if (request.kind !== 'buy' || request.idempotencyKey === undefined || request.outcome === undefined) continue;
    const original = orders.get(`${request.itemId} ${request.userId} ${request.idempotencyKey}`);
    if (original === undefined) continue;
    const described = `#${request.number} (a buy by user ${request.userId} with key ${request.idempotencyKey})`;
    if (request.outcome === 'order' && request.orderId !== original.orderId) {
      stop('a retry is answered with its original order', `${described} was answered with order ${request.orderId}, and the key's order is ${original.orderId}`);
    }
    if (original.commit <= request.invokedAtCommit && request.outcome !== 'order' && request.outcome !== 'unavailable' && request.outcome !== 'unknown') {
      stop('a retry is answered with its original order', `${described} was told ${request.outcome}, and the key's order ${original.orderId} was stored at commit ${original.commit}, before the request (commit ${request.invokedAtCommit})`);
    }
  }
}

type LoggedEvent = { commit: number; sliceId: string; sequence: number; event: SliceEvent };

/** Each slice's item and index, by slice id: what the store's log names a slice by. */
function slicePlaces(items: readonly SimulatedItem[]): Map<string, { readonly item: SimulatedItem; readonly index: number }> {
  const places = new Map<string, { readonly item: SimulatedItem; readonly index: number }>();
  for (const item of items) item.sliceIds.forEach((sliceId, index) => places.set(sliceId, { item, index }));
  return places;
}
/** A value of the sequential model after each event: [the commit that wrote it, the value]. */
type History = [number, number][];

/**
 * The sequential model of an item: a counter of units on sale (committed, plus those on their
 * way between slices), decremented by orders and reservations, added back by cancellations,
 * expiries and restocks. A `sold_out` is true only if, at some moment between the request and
 * its answer, the counter was below the quantity asked for: the moment the refusal linearizes.
 * It is read after every event of the store's log, each event placed at the commit that wrote it.
 *
 * The same holds for a `limit_exceeded`: true only if, at some moment between the request and
 * its answer, what the buyer held of the item (the units of their orders and open reservations,
 * on the slice their id leads to) and the quantity asked for came to more than the item's limit.
 */
export function checkRefusals(
  requests: readonly Request[],
  items: readonly SimulatedItem[],
  log: readonly LoggedEvent[],
  stop: (invariant: string, detail: string) => never,
): void {
  const buyersOf = new Map<string, Set<string>>(items.map((item) => [item.definition.id, new Set()]));
  for (const request of requests) if (request.kind === 'buy' || request.kind === 'reserve') buyersOf.get(request.itemId)?.add(request.userId);
  const { units, overLimit } = foldModel(items, buyersOf, log);
  /** Whether the refusal held at some moment from the request to its answer. */
  const linearizes = (history: History, before: number, request: Request, holds: (value: number) => boolean): boolean =>
    valuesFrom(history, before, request).some(holds);
  for (const request of requests) {
    if ((request.kind !== 'buy' && request.kind !== 'reserve') || request.repliedAtCommit === undefined) continue;
    if (request.outcome === 'sold_out') {
      const history = units.get(request.itemId)!;
      if (!linearizes(history, 0, request, (onSale) => onSale < request.quantity)) {
        stop('sold_out only when sold out (sequential model)', `#${request.number} asked for ${request.quantity} of item ${request.itemId} and was told sold_out, but at least ${Math.min(...valuesFrom(history, 0, request))} units were on sale from its request (commit ${request.invokedAtCommit}) to its answer (commit ${request.repliedAtCommit})`);
      }
    }
    if (request.outcome === 'limit_exceeded') {
      // How far over the limit the buyer's holdings would go with this request: over it when above 0.
      const history = overLimit.get(request.itemId)!.get(request.userId)!;
      if (!linearizes(history, Number.NEGATIVE_INFINITY, request, (holdingsLessLimit) => holdingsLessLimit + request.quantity > 0)) {
        stop('limit_exceeded only when over the limit (sequential model)', `#${request.number}: user ${request.userId} asked for ${request.quantity} of item ${request.itemId} and was told limit_exceeded, but what they held and asked for stayed within the limit from its request (commit ${request.invokedAtCommit}) to its answer (commit ${request.repliedAtCommit})`);
      }
    }
  }
}

/**
 * The values of `history` from a request to its answer: the one in force when it was made
 * (`before` if none was yet), then each one written until its answer.
 */
function valuesFrom(history: History, before: number, request: Request): number[] {
  let atInvocation = before;
  const values: number[] = [];
  for (const [commit, value] of history) {
    if (commit <= request.invokedAtCommit) atInvocation = value;
    else if (commit <= request.repliedAtCommit!) values.push(value);
  }
  return [atInvocation, ...values];
}

/**
 * Folds the store's log into each item's units on sale, and each buyer's holdings less the
 * limit, after every event: not only after every commit, since a batch may take the last unit
 * and then restock, and a refusal may linearize between the two.
 */
function foldModel(
  items: readonly SimulatedItem[],
  buyersOf: ReadonlyMap<string, ReadonlySet<string>>,
  log: readonly LoggedEvent[],
): { units: Map<string, History>; overLimit: Map<string, Map<string, History>> } {
  const places = slicePlaces(items);
  const states = new Map(items.flatMap((item) => item.sliceIds.map((sliceId) => [sliceId, initialState()] as const)));
  const given = new Map<string, number>();
  const taken = new Map<string, number>();
  const units = new Map<string, History>(items.map((item) => [item.definition.id, []]));
  const overLimit = new Map(
    items.map((item) => [item.definition.id, new Map([...buyersOf.get(item.definition.id)!].map((userId) => [userId, [] as History]))]),
  );
  const unitsOf = (item: SimulatedItem): number => {
    let onSale = 0;
    for (const sliceId of item.sliceIds) onSale += states.get(sliceId)!.available;
    for (const [transferId, quantity] of given) if (transferId.startsWith(`${item.definition.id}:`) && !taken.has(transferId)) onSale += quantity;
    return onSale;
  };
  for (const entry of log) {
    const state = states.get(entry.sliceId)!;
    try {
      evolve(state, entry.event);
    } catch {
      // An oversell; the step checks report it.
    }
    const { item } = places.get(entry.sliceId)!;
    const itemId = item.definition.id;
    if (entry.event.kind === 'transferred_out') given.set(`${itemId}:${entry.event.transferId}`, entry.event.quantity);
    if (entry.event.kind === 'transferred_in') taken.set(`${itemId}:${entry.event.transferId}`, entry.event.quantity);
    units.get(itemId)!.push([entry.commit, unitsOf(item)]);
    for (const [userId, history] of overLimit.get(itemId)!) {
      // A buyer's requests all go to one slice, the one their id leads to (src/items.ts).
      const slice = states.get(item.sliceIds[sliceIndexFor(userId, item.sliceIds.length)]!)!;
      history.push([entry.commit, (slice.holdings.get(userId) ?? 0) - slice.perUserLimit]);
    }
  }
  return { units, overLimit };
}
