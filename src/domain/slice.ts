/**
 * The decider of one item slice: a share of an item's stock that exactly one actor owns.
 *
 * Three functions and no I/O: `initialState()`, `decide(command, state)` and
 * `evolve(state, event)`. Time and ids arrive inside the commands, so the same commands give the
 * same events on every run, and replay folds the journal with this very `evolve`.
 *
 * The state is owned by exactly one slice at a time. `evolve` updates it in place and returns
 * it: copying the per-user holdings on every event would cost O(users) per order, which a hot
 * item with a hundred thousand buyers cannot afford.
 */
import { assertNever, type RejectionReason } from './reasons.js';

/** How many closed reservations a slice remembers, to answer `token_used` rather than `token_invalid`. */
export const closedReservationsMax = 100_000;

/**
 * How many transfer ids of the old kind (made before transfers carried a per-giver sequence) a
 * slice remembers. Only journals written before that change hold such transfers; every new
 * transfer is deduplicated completely by its sequence (see `ReceivedTransfers`).
 */
export const receivedTransfersMax = 100_000;

/** Stock this slice gave to a sibling, not yet known to have arrived there. */
export interface OutgoingTransfer {
  readonly toSliceIndex: number;
  readonly quantity: number;
  /** The transfer's number among those from this slice to that sibling; absent on old transfers. */
  readonly sequence?: number;
}

/**
 * The transfers one slice has received from one sibling, whose transfers to it are numbered
 * 1, 2, 3…: every number up to `through`, and the few above it that came early. Complete and
 * bounded at once: a redelivery is recognised however long ago its transfer arrived, and the
 * slice keeps only the numbers that arrived out of order.
 */
export interface ReceivedTransfers {
  readonly through: number;
  readonly beyond: readonly number[];
}

/** Whether the transfer numbered `sequence` is among `received`. */
export function transferReceived(received: ReceivedTransfers | undefined, sequence: number): boolean {
  return received !== undefined && (sequence <= received.through || received.beyond.includes(sequence));
}

function withTransferReceived(received: ReceivedTransfers | undefined, sequence: number): ReceivedTransfers {
  let through = received?.through ?? 0;
  const beyond = new Set(received?.beyond ?? []);
  beyond.add(sequence);
  while (beyond.delete(through + 1)) through++;
  return { through, beyond: [...beyond].sort((left, right) => left - right) };
}

/** The id of the `sequence`-th transfer from slice `from` to slice `to`: derived, so it never repeats. */
export function transferIdOf(from: number, to: number, sequence: number): string {
  return `${from}>${to}#${sequence}`;
}

export interface OpenReservation {
  readonly userId: string;
  readonly quantity: number;
  readonly expiresAt: number;
  /** The client's key of the reserve that made it, forgotten with it when it is cancelled or expires. */
  readonly idempotencyKey?: string;
}

export type ReservationOutcome = 'confirmed' | 'cancelled' | 'expired';

export interface SliceState {
  defined: boolean;
  /**
   * Events folded into this state. It only moves forward over what is committed, across
   * restarts and whatever the clock does, so the engine derives reservation ids from it.
   */
  version: number;
  itemId: string;
  sliceIndex: number;
  /** The units this slice owns: its share at definition plus restocks. */
  stock: number;
  available: number;
  reserved: number;
  sold: number;
  perUserLimit: number;
  startsAt: number;
  /** `null` when the sale has no end. */
  endsAt: number | null;
  reserveTtlMs: number;
  /** Confirmed plus reserved quantity per user id. */
  holdings: Map<string, number>;
  /** Open reservations by reservation id, in the order they were made. */
  open: Map<string, OpenReservation>;
  /** Recently closed reservations, oldest first, bounded by `closedReservationsMax`. */
  closed: Map<string, ReservationOutcome>;
  /**
   * Transfers given away and not yet settled, by transfer id. Replaced, never changed in place,
   * so the figures the slice publishes can share it.
   */
  outgoing: Map<string, OutgoingTransfer>;
  /** Transfers given so far to each sibling, by its slice index: the number of the last one. */
  transfersGiven: Map<number, number>;
  /** Transfers received from each sibling, by its slice index. Replaced, never changed in place. */
  receivedFrom: Map<number, ReceivedTransfers>;
  /** Old-style transfer ids received, oldest first, bounded by `receivedTransfersMax`. */
  received: Set<string>;
  /**
   * Confirmed orders an administrator cancelled, so a second cancellation changes nothing. It
   * grows only with cancellations, which are rare and deliberate, never with sales.
   */
  cancelledOrders: Set<string>;
  /**
   * Ids of the restocks this slice has taken its share of, so a restock retried with its id
   * adds nothing twice. Restocks are an administrator's rare act, so every id is kept.
   */
  restocks: Set<string>;
  /**
   * The event each keyed purchase came to, by user and key (see `requestKey`), so that a retry
   * is answered with it instead of buying again. Kept for as long as its order exists or its
   * reservation is open or confirmed; so bounded by the stock, like `holdings`.
   */
  requests: Map<string, SliceEvent>;
}

/** Where a user's keyed request is remembered. User ids are decimal digits, so this is unambiguous. */
export function requestKey(userId: string, idempotencyKey: string): string {
  return `${userId}:${idempotencyKey}`;
}

export interface SliceTerms {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly stock: number;
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly reserveTtlMs: number;
}

/** The terms an administrator may change while an item is on sale: its window and its limit. */
export interface SaleTerms {
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
}

export type SliceCommand =
  | ({ readonly kind: 'define'; readonly nowMs: number } & SliceTerms)
  | {
      readonly kind: 'restock';
      readonly quantity: number;
      /** Names the restock across its slices and its retries; one taken already adds nothing. */
      readonly restockId?: string | undefined;
      readonly nowMs: number;
    }
  /**
   * New terms, whole (not a difference), so that sending them again changes nothing. The limit
   * cannot go below what a user of this slice already holds: that user would hold more than
   * the limit, which the contract promises never happens.
   */
  | ({ readonly kind: 'amend'; readonly nowMs: number } & SaleTerms)
  | {
      readonly kind: 'reserve';
      readonly userId: string;
      readonly quantity: number;
      readonly reservationId: string;
      readonly nowMs: number;
      /** The client's key: a retry with it is answered with the original reservation. */
      readonly idempotencyKey?: string | undefined;
      /**
       * The engine's own refusal (blocked, not eligible, outside the window, sold out), sent
       * with a keyed request instead of being answered at once: a retry of a request that went
       * through is answered with what it came to, and only a new request is refused.
       */
      readonly refusal?: RejectionReason | undefined;
    }
  | {
      readonly kind: 'confirm';
      readonly userId: string;
      readonly reservationId: string;
      readonly orderId: string;
      readonly nowMs: number;
    }
  | { readonly kind: 'cancel'; readonly userId: string; readonly reservationId: string; readonly nowMs: number }
  | { readonly kind: 'expire'; readonly nowMs: number }
  | {
      readonly kind: 'buy';
      readonly userId: string;
      readonly quantity: number;
      readonly orderId: string;
      readonly nowMs: number;
      /** The client's key: a retry with it is answered with the original order. */
      readonly idempotencyKey?: string | undefined;
      /** As on `reserve`. */
      readonly refusal?: RejectionReason | undefined;
    }
  /**
   * Give up to `quantity` available units to a sibling slice; gives what it has, if less. The
   * transfer is numbered in the sequence of this slice's transfers to that sibling, and its id
   * derives from that number.
   */
  | { readonly kind: 'transfer_out'; readonly toSliceIndex: number; readonly quantity: number; readonly nowMs: number }
  /** Take units a sibling gave; a transfer already received is a no-op, so redelivery is safe. */
  | {
      readonly kind: 'transfer_in';
      readonly transferId: string;
      readonly fromSliceIndex: number;
      /** The transfer's number from that sibling; absent only on old transfers. */
      readonly sequence?: number | undefined;
      readonly quantity: number;
      readonly nowMs: number;
    }
  /** The giver learns that the transfer arrived. */
  | { readonly kind: 'settle_transfer'; readonly transferId: string; readonly nowMs: number }
  /**
   * An administrator cancels a confirmed order of this slice: its units go back on sale and its
   * buyer's limit is freed. The order's buyer and quantity come from its projected row.
   */
  | {
      readonly kind: 'cancel_order';
      readonly orderId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly nowMs: number;
    };

export type SliceEvent =
  | ({ readonly kind: 'defined'; readonly atMs: number } & SliceTerms)
  | { readonly kind: 'restocked'; readonly quantity: number; readonly restockId?: string; readonly atMs: number }
  | ({ readonly kind: 'amended'; readonly atMs: number } & SaleTerms)
  | {
      readonly kind: 'reserved';
      readonly reservationId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly expiresAt: number;
      readonly idempotencyKey?: string;
      readonly atMs: number;
    }
  | {
      readonly kind: 'confirmed';
      readonly reservationId: string;
      readonly orderId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly atMs: number;
    }
  | {
      readonly kind: 'cancelled';
      readonly reservationId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly atMs: number;
    }
  | {
      readonly kind: 'expired';
      readonly reservationId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly atMs: number;
    }
  | {
      readonly kind: 'purchased';
      readonly orderId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly idempotencyKey?: string;
      readonly atMs: number;
    }
  | {
      readonly kind: 'transferred_out';
      readonly transferId: string;
      readonly toSliceIndex: number;
      /** Absent only on transfers journaled before transfers were numbered. */
      readonly sequence?: number;
      readonly quantity: number;
      readonly atMs: number;
    }
  | {
      readonly kind: 'transferred_in';
      readonly transferId: string;
      readonly fromSliceIndex: number;
      readonly sequence?: number;
      readonly quantity: number;
      readonly atMs: number;
    }
  | { readonly kind: 'transfer_settled'; readonly transferId: string; readonly atMs: number }
  | {
      readonly kind: 'order_cancelled';
      readonly orderId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly atMs: number;
    };

/**
 * What a command came to: the events to journal and, when the command was turned down, why.
 * A rejection can still carry events: confirming a reservation whose TTL has run out is
 * refused with `token_expired`, and the expiry it discovered is journaled so the stock goes
 * back on sale.
 */
export interface Decision {
  readonly events: readonly SliceEvent[];
  readonly rejection: RejectionReason | null;
  /** A keyed retry of a request that went through: the event it came to, journaled already. */
  readonly recalled?: SliceEvent;
}

const noEvents: readonly SliceEvent[] = [];

function accepted(events: readonly SliceEvent[]): Decision {
  return { events, rejection: null };
}

function rejected(rejection: RejectionReason, events: readonly SliceEvent[] = noEvents): Decision {
  return { events, rejection };
}

export function initialState(): SliceState {
  return {
    defined: false,
    version: 0,
    itemId: '',
    sliceIndex: 0,
    stock: 0,
    available: 0,
    reserved: 0,
    sold: 0,
    perUserLimit: 0,
    startsAt: 0,
    endsAt: null,
    reserveTtlMs: 0,
    holdings: new Map(),
    open: new Map(),
    closed: new Map(),
    outgoing: new Map(),
    transfersGiven: new Map(),
    receivedFrom: new Map(),
    received: new Set(),
    cancelledOrders: new Set(),
    restocks: new Set(),
    requests: new Map(),
  };
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function isNonNegativeInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** The sale-window and existence checks every purchase goes through, in the order buyers expect. */
function checkSaleOpen(state: SliceState, nowMs: number): RejectionReason | null {
  if (!state.defined) return 'unknown_item';
  if (nowMs < state.startsAt) return 'not_started';
  if (state.endsAt !== null && nowMs >= state.endsAt) return 'ended';
  return null;
}

function checkQuantity(state: SliceState, userId: string, quantity: number): RejectionReason | null {
  if (!isPositiveInteger(quantity)) return 'invalid';
  const held = state.holdings.get(userId) ?? 0;
  if (held + quantity > state.perUserLimit) return 'limit_exceeded';
  if (quantity > state.available) return 'sold_out';
  return null;
}

/**
 * A keyed purchase whose key this user used before: the original event when the request is
 * the same (a retry), `invalid` when the key named another request; null for a new key.
 */
function recall(state: SliceState, command: Extract<SliceCommand, { kind: 'reserve' | 'buy' }>): Decision | null {
  if (command.idempotencyKey === undefined) return null;
  const original = state.requests.get(requestKey(command.userId, command.idempotencyKey));
  if (original === undefined) return null;
  const sameKind = command.kind === 'buy' ? original.kind === 'purchased' : original.kind === 'reserved';
  const sameQuantity = 'quantity' in original && original.quantity === command.quantity;
  if (!sameKind || !sameQuantity) return rejected('invalid');
  return { events: noEvents, rejection: null, recalled: original };
}

/** A reservation that is no longer open: why, as the buyer should hear it. */
function closedReason(state: SliceState, reservationId: string): RejectionReason {
  const outcome = state.closed.get(reservationId);
  if (outcome === undefined) return 'token_invalid';
  return outcome === 'expired' ? 'token_expired' : 'token_used';
}

export function decide(command: SliceCommand, state: SliceState): Decision {
  switch (command.kind) {
    case 'define': {
      if (state.defined) return rejected('invalid');
      const { kind: _kind, nowMs, ...terms } = command;
      const valid =
        isNonNegativeInteger(terms.stock) &&
        isPositiveInteger(terms.perUserLimit) &&
        isPositiveInteger(terms.reserveTtlMs) &&
        Number.isSafeInteger(terms.startsAt) &&
        (terms.endsAt === null || (Number.isSafeInteger(terms.endsAt) && terms.endsAt > terms.startsAt));
      if (!valid) return rejected('invalid');
      return accepted([{ kind: 'defined', atMs: nowMs, ...terms }]);
    }
    case 'restock': {
      if (!state.defined) return rejected('unknown_item');
      if (!isPositiveInteger(command.quantity)) return rejected('invalid');
      const { restockId } = command;
      if (restockId === undefined) return accepted([{ kind: 'restocked', quantity: command.quantity, atMs: command.nowMs }]);
      if (state.restocks.has(restockId)) return accepted(noEvents);
      return accepted([{ kind: 'restocked', quantity: command.quantity, restockId, atMs: command.nowMs }]);
    }
    case 'amend': {
      if (!state.defined) return rejected('unknown_item');
      const { perUserLimit, startsAt, endsAt, nowMs } = command;
      const valid =
        isPositiveInteger(perUserLimit) &&
        Number.isSafeInteger(startsAt) &&
        (endsAt === null || (Number.isSafeInteger(endsAt) && endsAt > startsAt));
      if (!valid) return rejected('invalid');
      if (perUserLimit === state.perUserLimit && startsAt === state.startsAt && endsAt === state.endsAt) {
        return accepted(noEvents);
      }
      // A pass over the holders, for a rare administrative command, never for a purchase.
      if (perUserLimit < state.perUserLimit) {
        for (const held of state.holdings.values()) if (held > perUserLimit) return rejected('limit_exceeded');
      }
      return accepted([{ kind: 'amended', perUserLimit, startsAt, endsAt, atMs: nowMs }]);
    }
    case 'reserve': {
      const recalled = recall(state, command);
      if (recalled !== null) return recalled;
      const refusal =
        command.refusal ?? checkSaleOpen(state, command.nowMs) ?? checkQuantity(state, command.userId, command.quantity);
      if (refusal !== null) return rejected(refusal);
      // A reservation id already in use would overwrite an open reservation, or reopen a closed
      // one. The engine's ids never repeat; should one ever, nothing changes and a retry gets
      // a fresh id.
      if (state.open.has(command.reservationId) || state.closed.has(command.reservationId)) return rejected('unavailable');
      return accepted([
        {
          kind: 'reserved',
          reservationId: command.reservationId,
          userId: command.userId,
          quantity: command.quantity,
          expiresAt: command.nowMs + state.reserveTtlMs,
          ...(command.idempotencyKey === undefined ? {} : { idempotencyKey: command.idempotencyKey }),
          atMs: command.nowMs,
        },
      ]);
    }
    case 'buy': {
      const recalled = recall(state, command);
      if (recalled !== null) return recalled;
      const refusal =
        command.refusal ?? checkSaleOpen(state, command.nowMs) ?? checkQuantity(state, command.userId, command.quantity);
      if (refusal !== null) return rejected(refusal);
      return accepted([
        {
          kind: 'purchased',
          orderId: command.orderId,
          userId: command.userId,
          quantity: command.quantity,
          ...(command.idempotencyKey === undefined ? {} : { idempotencyKey: command.idempotencyKey }),
          atMs: command.nowMs,
        },
      ]);
    }
    case 'confirm':
    case 'cancel': {
      if (!state.defined) return rejected('unknown_item');
      const reservation = state.open.get(command.reservationId);
      if (reservation === undefined) return rejected(closedReason(state, command.reservationId));
      if (reservation.userId !== command.userId) return rejected('token_invalid');
      const base = {
        reservationId: command.reservationId,
        userId: reservation.userId,
        quantity: reservation.quantity,
        atMs: command.nowMs,
      };
      // The TTL is a promise to the other buyers: past it the stock is theirs again, whether or
      // not the expiry sweep has run yet.
      if (command.nowMs >= reservation.expiresAt) {
        return rejected('token_expired', [{ kind: 'expired', ...base }]);
      }
      if (command.kind === 'cancel') return accepted([{ kind: 'cancelled', ...base }]);
      return accepted([{ kind: 'confirmed', orderId: command.orderId, ...base }]);
    }
    case 'expire': {
      // Open reservations are kept in the order they were made, with one TTL per item, so they
      // expire in that order: the sweep stops at the first one not yet due, and costs what it
      // expires rather than all that is open. (A clock stepped backwards could only delay an
      // expiry; `confirm` and `cancel` check the expiry of their own reservation regardless.)
      const events: SliceEvent[] = [];
      for (const [reservationId, reservation] of state.open) {
        if (command.nowMs < reservation.expiresAt) break;
        events.push({
          kind: 'expired',
          reservationId,
          userId: reservation.userId,
          quantity: reservation.quantity,
          atMs: command.nowMs,
        });
      }
      return accepted(events);
    }
    case 'transfer_out': {
      if (!state.defined) return rejected('unknown_item');
      if (!isPositiveInteger(command.quantity) || command.toSliceIndex === state.sliceIndex) return rejected('invalid');
      const quantity = Math.min(command.quantity, state.available);
      if (quantity === 0) return rejected('sold_out');
      const sequence = (state.transfersGiven.get(command.toSliceIndex) ?? 0) + 1;
      return accepted([
        {
          kind: 'transferred_out',
          transferId: transferIdOf(state.sliceIndex, command.toSliceIndex, sequence),
          toSliceIndex: command.toSliceIndex,
          sequence,
          quantity,
          atMs: command.nowMs,
        },
      ]);
    }
    case 'transfer_in': {
      if (!state.defined) return rejected('unknown_item');
      if (!isPositiveInteger(command.quantity)) return rejected('invalid');
      const { sequence } = command;
      if (sequence === undefined) {
        if (state.received.has(command.transferId)) return accepted(noEvents);
      } else {
        if (!isPositiveInteger(sequence)) return rejected('invalid');
        if (transferReceived(state.receivedFrom.get(command.fromSliceIndex), sequence)) return accepted(noEvents);
      }
      return accepted([
        {
          kind: 'transferred_in',
          transferId: command.transferId,
          fromSliceIndex: command.fromSliceIndex,
          ...(sequence === undefined ? {} : { sequence }),
          quantity: command.quantity,
          atMs: command.nowMs,
        },
      ]);
    }
    case 'settle_transfer': {
      if (!state.outgoing.has(command.transferId)) return accepted(noEvents);
      return accepted([{ kind: 'transfer_settled', transferId: command.transferId, atMs: command.nowMs }]);
    }
    case 'cancel_order': {
      if (!state.defined) return rejected('unknown_item');
      if (state.cancelledOrders.has(command.orderId)) return accepted(noEvents);
      // The order's facts come from its projection; the slice only checks that they can be
      // true of it, so a wrong command can never make stock out of nothing.
      const held = state.holdings.get(command.userId) ?? 0;
      if (!isPositiveInteger(command.quantity) || command.quantity > held || command.quantity > state.sold) {
        return rejected('invalid');
      }
      return accepted([
        {
          kind: 'order_cancelled',
          orderId: command.orderId,
          userId: command.userId,
          quantity: command.quantity,
          atMs: command.nowMs,
        },
      ]);
    }
    default:
      return assertNever(command);
  }
}

function addHolding(state: SliceState, userId: string, delta: number): void {
  const next = (state.holdings.get(userId) ?? 0) + delta;
  if (next === 0) state.holdings.delete(userId);
  else state.holdings.set(userId, next);
}

function close(state: SliceState, reservationId: string, outcome: ReservationOutcome): void {
  state.open.delete(reservationId);
  state.closed.set(reservationId, outcome);
  if (state.closed.size > closedReservationsMax) {
    // Maps iterate in insertion order, so the first key is the oldest closed reservation.
    const oldest = state.closed.keys().next().value;
    if (oldest !== undefined) state.closed.delete(oldest);
  }
}

/** Applies one event. Updates `state` in place and returns it (see the module comment). */
export function evolve(state: SliceState, event: SliceEvent): SliceState {
  state.version++;
  switch (event.kind) {
    case 'defined':
      state.defined = true;
      state.itemId = event.itemId;
      state.sliceIndex = event.sliceIndex;
      state.stock = event.stock;
      state.available = event.stock;
      state.perUserLimit = event.perUserLimit;
      state.startsAt = event.startsAt;
      state.endsAt = event.endsAt;
      state.reserveTtlMs = event.reserveTtlMs;
      break;
    case 'restocked':
      state.stock += event.quantity;
      state.available += event.quantity;
      if (event.restockId !== undefined) state.restocks.add(event.restockId);
      break;
    case 'amended':
      state.perUserLimit = event.perUserLimit;
      state.startsAt = event.startsAt;
      state.endsAt = event.endsAt;
      break;
    case 'reserved':
      state.available -= event.quantity;
      state.reserved += event.quantity;
      addHolding(state, event.userId, event.quantity);
      state.open.set(event.reservationId, {
        userId: event.userId,
        quantity: event.quantity,
        expiresAt: event.expiresAt,
        ...(event.idempotencyKey === undefined ? {} : { idempotencyKey: event.idempotencyKey }),
      });
      if (event.idempotencyKey !== undefined) state.requests.set(requestKey(event.userId, event.idempotencyKey), event);
      break;
    case 'confirmed':
      state.reserved -= event.quantity;
      state.sold += event.quantity;
      close(state, event.reservationId, 'confirmed');
      break;
    case 'cancelled':
    case 'expired': {
      // Add-back: the reserved units go back on sale and stop counting against the user's limit.
      state.reserved -= event.quantity;
      state.available += event.quantity;
      addHolding(state, event.userId, -event.quantity);
      // Its key goes with it: a retry now makes a new reservation, as a new request would.
      const key = state.open.get(event.reservationId)?.idempotencyKey;
      if (key !== undefined) state.requests.delete(requestKey(event.userId, key));
      close(state, event.reservationId, event.kind);
      break;
    }
    case 'purchased':
      state.available -= event.quantity;
      state.sold += event.quantity;
      addHolding(state, event.userId, event.quantity);
      if (event.idempotencyKey !== undefined) state.requests.set(requestKey(event.userId, event.idempotencyKey), event);
      break;
    case 'transferred_out': {
      state.stock -= event.quantity;
      state.available -= event.quantity;
      const { toSliceIndex, quantity, sequence } = event;
      state.outgoing = new Map(state.outgoing).set(
        event.transferId,
        sequence === undefined ? { toSliceIndex, quantity } : { toSliceIndex, quantity, sequence },
      );
      if (sequence !== undefined) state.transfersGiven.set(toSliceIndex, Math.max(sequence, state.transfersGiven.get(toSliceIndex) ?? 0));
      break;
    }
    case 'transferred_in':
      state.stock += event.quantity;
      state.available += event.quantity;
      if (event.sequence !== undefined) {
        const receivedFrom = new Map(state.receivedFrom);
        receivedFrom.set(event.fromSliceIndex, withTransferReceived(receivedFrom.get(event.fromSliceIndex), event.sequence));
        state.receivedFrom = receivedFrom;
        break;
      }
      state.received.add(event.transferId);
      if (state.received.size > receivedTransfersMax) {
        const oldest = state.received.values().next().value;
        if (oldest !== undefined) state.received.delete(oldest);
      }
      break;
    case 'transfer_settled':
      if (state.outgoing.has(event.transferId)) {
        state.outgoing = new Map(state.outgoing);
        state.outgoing.delete(event.transferId);
      }
      break;
    case 'order_cancelled':
      state.sold -= event.quantity;
      state.available += event.quantity;
      addHolding(state, event.userId, -event.quantity);
      state.cancelledOrders.add(event.orderId);
      break;
    default:
      return assertNever(event);
  }
  assertBalanced(state);
  return state;
}

/**
 * The slice's invariants, checked after every event. A failure here is a bug in decide or
 * evolve, never a business outcome, so it throws. PostgreSQL checks the same with CHECK
 * constraints on the slice's inventory row.
 */
export function assertBalanced(state: SliceState): void {
  if (
    state.available < 0 ||
    state.reserved < 0 ||
    state.sold < 0 ||
    state.available + state.reserved + state.sold !== state.stock
  ) {
    throw new Error(
      `slice ${state.itemId}/${state.sliceIndex} out of balance: available ${state.available} + reserved ` +
        `${state.reserved} + sold ${state.sold} != stock ${state.stock}`,
    );
  }
}

export interface SliceSnapshot {
  readonly defined: boolean;
  /** Absent in snapshots taken before it existed. */
  readonly version?: number;
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly reserveTtlMs: number;
  readonly holdings: ReadonlyArray<readonly [string, number]>;
  readonly open: ReadonlyArray<readonly [string, OpenReservation]>;
  readonly closed: ReadonlyArray<readonly [string, ReservationOutcome]>;
  readonly outgoing: ReadonlyArray<readonly [string, OutgoingTransfer]>;
  readonly transfersGiven?: ReadonlyArray<readonly [number, number]>;
  readonly receivedFrom?: ReadonlyArray<readonly [number, ReceivedTransfers]>;
  readonly received: readonly string[];
  /** Absent in snapshots taken before orders could be cancelled. */
  readonly cancelledOrders?: readonly string[];
  readonly restocks?: readonly string[];
  readonly requests?: ReadonlyArray<readonly [string, SliceEvent]>;
}

/** A JSON-safe copy of the state that shares nothing with it. */
export function toSnapshot(state: SliceState): SliceSnapshot {
  return {
    ...state,
    holdings: [...state.holdings],
    open: [...state.open],
    closed: [...state.closed],
    outgoing: [...state.outgoing],
    transfersGiven: [...state.transfersGiven],
    receivedFrom: [...state.receivedFrom],
    received: [...state.received],
    cancelledOrders: [...state.cancelledOrders],
    restocks: [...state.restocks],
    requests: [...state.requests],
  };
}

export function fromSnapshot(snapshot: SliceSnapshot): SliceState {
  const state: SliceState = {
    ...snapshot,
    version: snapshot.version ?? 0,
    holdings: new Map(snapshot.holdings),
    open: new Map(snapshot.open),
    closed: new Map(snapshot.closed),
    outgoing: new Map(snapshot.outgoing),
    transfersGiven: new Map(snapshot.transfersGiven ?? []),
    receivedFrom: new Map(snapshot.receivedFrom ?? []),
    received: new Set(snapshot.received),
    cancelledOrders: new Set(snapshot.cancelledOrders ?? []),
    restocks: new Set(snapshot.restocks ?? []),
    requests: new Map(snapshot.requests ?? []),
  };
  assertBalanced(state);
  return state;
}
