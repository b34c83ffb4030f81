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

/** How many received transfer ids a slice remembers, to make a redelivered transfer a no-op. */
export const receivedTransfersMax = 100_000;

/** Stock this slice gave to a sibling, not yet known to have arrived there. */
export interface OutgoingTransfer {
  readonly toSliceIndex: number;
  readonly quantity: number;
}

export interface OpenReservation {
  readonly userId: string;
  readonly quantity: number;
  readonly expiresAt: number;
}

export type ReservationOutcome = 'confirmed' | 'cancelled' | 'expired';

export interface SliceState {
  defined: boolean;
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
  /** Transfers given away and not yet settled, by transfer id. */
  outgoing: Map<string, OutgoingTransfer>;
  /** Transfers received, oldest first, bounded by `receivedTransfersMax`. */
  received: Set<string>;
  /**
   * Confirmed orders an administrator cancelled, so a second cancellation changes nothing. It
   * grows only with cancellations, which are rare and deliberate, never with sales.
   */
  cancelledOrders: Set<string>;
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
  | { readonly kind: 'restock'; readonly quantity: number; readonly nowMs: number }
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
    }
  /** Give up to `quantity` available units to a sibling slice; gives what it has, if less. */
  | {
      readonly kind: 'transfer_out';
      readonly transferId: string;
      readonly toSliceIndex: number;
      readonly quantity: number;
      readonly nowMs: number;
    }
  /** Take units a sibling gave; a transfer already received is a no-op, so redelivery is safe. */
  | {
      readonly kind: 'transfer_in';
      readonly transferId: string;
      readonly fromSliceIndex: number;
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
  | { readonly kind: 'restocked'; readonly quantity: number; readonly atMs: number }
  | ({ readonly kind: 'amended'; readonly atMs: number } & SaleTerms)
  | {
      readonly kind: 'reserved';
      readonly reservationId: string;
      readonly userId: string;
      readonly quantity: number;
      readonly expiresAt: number;
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
      readonly atMs: number;
    }
  | {
      readonly kind: 'transferred_out';
      readonly transferId: string;
      readonly toSliceIndex: number;
      readonly quantity: number;
      readonly atMs: number;
    }
  | {
      readonly kind: 'transferred_in';
      readonly transferId: string;
      readonly fromSliceIndex: number;
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
    received: new Set(),
    cancelledOrders: new Set(),
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
      return accepted([{ kind: 'restocked', quantity: command.quantity, atMs: command.nowMs }]);
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
      const refusal =
        checkSaleOpen(state, command.nowMs) ?? checkQuantity(state, command.userId, command.quantity);
      if (refusal !== null) return rejected(refusal);
      return accepted([
        {
          kind: 'reserved',
          reservationId: command.reservationId,
          userId: command.userId,
          quantity: command.quantity,
          expiresAt: command.nowMs + state.reserveTtlMs,
          atMs: command.nowMs,
        },
      ]);
    }
    case 'buy': {
      const refusal =
        checkSaleOpen(state, command.nowMs) ?? checkQuantity(state, command.userId, command.quantity);
      if (refusal !== null) return rejected(refusal);
      return accepted([
        {
          kind: 'purchased',
          orderId: command.orderId,
          userId: command.userId,
          quantity: command.quantity,
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
      if (state.outgoing.has(command.transferId)) return rejected('invalid');
      const quantity = Math.min(command.quantity, state.available);
      if (quantity === 0) return rejected('sold_out');
      return accepted([
        {
          kind: 'transferred_out',
          transferId: command.transferId,
          toSliceIndex: command.toSliceIndex,
          quantity,
          atMs: command.nowMs,
        },
      ]);
    }
    case 'transfer_in': {
      if (!state.defined) return rejected('unknown_item');
      if (!isPositiveInteger(command.quantity)) return rejected('invalid');
      if (state.received.has(command.transferId)) return accepted(noEvents);
      return accepted([
        {
          kind: 'transferred_in',
          transferId: command.transferId,
          fromSliceIndex: command.fromSliceIndex,
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
      });
      break;
    case 'confirmed':
      state.reserved -= event.quantity;
      state.sold += event.quantity;
      close(state, event.reservationId, 'confirmed');
      break;
    case 'cancelled':
    case 'expired':
      // Add-back: the reserved units go back on sale and stop counting against the user's limit.
      state.reserved -= event.quantity;
      state.available += event.quantity;
      addHolding(state, event.userId, -event.quantity);
      close(state, event.reservationId, event.kind);
      break;
    case 'purchased':
      state.available -= event.quantity;
      state.sold += event.quantity;
      addHolding(state, event.userId, event.quantity);
      break;
    case 'transferred_out':
      state.stock -= event.quantity;
      state.available -= event.quantity;
      state.outgoing.set(event.transferId, { toSliceIndex: event.toSliceIndex, quantity: event.quantity });
      break;
    case 'transferred_in':
      state.stock += event.quantity;
      state.available += event.quantity;
      state.received.add(event.transferId);
      if (state.received.size > receivedTransfersMax) {
        const oldest = state.received.values().next().value;
        if (oldest !== undefined) state.received.delete(oldest);
      }
      break;
    case 'transfer_settled':
      state.outgoing.delete(event.transferId);
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
  readonly received: readonly string[];
  /** Absent in snapshots taken before orders could be cancelled. */
  readonly cancelledOrders?: readonly string[];
}

/** A JSON-safe copy of the state that shares nothing with it. */
export function toSnapshot(state: SliceState): SliceSnapshot {
  return {
    ...state,
    holdings: [...state.holdings],
    open: [...state.open],
    closed: [...state.closed],
    outgoing: [...state.outgoing],
    received: [...state.received],
    cancelledOrders: [...state.cancelledOrders],
  };
}

export function fromSnapshot(snapshot: SliceSnapshot): SliceState {
  const state: SliceState = {
    ...snapshot,
    holdings: new Map(snapshot.holdings),
    open: new Map(snapshot.open),
    closed: new Map(snapshot.closed),
    outgoing: new Map(snapshot.outgoing),
    received: new Set(snapshot.received),
    cancelledOrders: new Set(snapshot.cancelledOrders ?? []),
  };
  assertBalanced(state);
  return state;
}
