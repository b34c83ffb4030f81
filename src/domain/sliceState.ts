/**
 * The state of one item slice, and what can be said to it and what it says: commands, events,
 * decisions. The decider (`decide`, `evolve`) is in slice.ts, the snapshot form in
 * sliceSnapshot.ts; slice.ts re-exports all three, so callers import from there.
 */
import type { RejectionReason } from './reasons.js';

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

export function withTransferReceived(received: ReceivedTransfers | undefined, sequence: number): ReceivedTransfers {
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
