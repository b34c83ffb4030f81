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
import {
  assertBalanced,
  closedReservationsMax,
  receivedTransfersMax,
  requestKey,
  transferIdOf,
  transferReceived,
  withTransferReceived,
  type Decision,
  type ReservationOutcome,
  type SliceCommand,
  type SliceEvent,
  type SliceState,
} from './sliceState.js';

export * from './sliceState.js';
export * from './sliceSnapshot.js';

const noEvents: readonly SliceEvent[] = [];

function accepted(events: readonly SliceEvent[]): Decision {
  return { events, rejection: null };
}

function rejected(rejection: RejectionReason, events: readonly SliceEvent[] = noEvents): Decision {
  return { events, rejection };
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
