/**
 * Folding a slice's journal with the engine's own `evolve`, checking the slice's invariants
 * after every event, so a violation is reported where it happened (item, slice, sequence), not
 * only at the end; and the item's invariants across its slices once all are folded.
 *
 * Pure over its input: the events come from the databases or from an export file
 * (sources.ts), and nothing here writes.
 */
import { evolve, initialState, type SliceEvent, type SliceState } from '../domain/slice.js';
import type { StoredEvent } from '../persistence/journalStore.js';

/** One broken promise, precisely: where, what was expected, what was found. */
export interface Violation {
  readonly itemId: string;
  readonly sliceIndex: number | null;
  readonly sequence: number | null;
  readonly invariant: string;
  readonly expected: string;
  readonly found: string;
}

/** Where a fold stops: at a moment (the events decided at or before it) or at a sequence. */
export type Until = { readonly atMs: number } | { readonly sequence: number } | null;

export interface SliceFold {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
  state: SliceState;
  events: number;
  lastSequence: number;
  /** Units given to a sibling, by transfer id, and units taken from one. */
  readonly transfersOut: Map<string, number>;
  readonly transfersIn: Map<string, number>;
  expiredReservations: number;
  cancelledReservations: number;
  cancelledOrders: number;
  restocked: number;
  definedStock: number;
  readonly violations: Violation[];
}

export interface SliceIdentity {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
}

export function newFold(slice: SliceIdentity): SliceFold {
  return {
    ...slice,
    state: initialState(),
    events: 0,
    lastSequence: 0,
    transfersOut: new Map(),
    transfersIn: new Map(),
    expiredReservations: 0,
    cancelledReservations: 0,
    cancelledOrders: 0,
    restocked: 0,
    definedStock: 0,
    violations: [],
  };
}

function isPast(until: Until, stored: StoredEvent): boolean {
  if (until === null) return false;
  return 'atMs' in until ? stored.event.atMs > until.atMs : stored.sequence > until.sequence;
}

/**
 * Folds a page of events into the slice, checking after each one. Returns false once `until`
 * is passed (the rest of the journal is not wanted).
 */
export function foldPage(fold: SliceFold, page: readonly StoredEvent[], until: Until): boolean {
  for (const stored of page) {
    if (isPast(until, stored)) return false;
    foldEvent(fold, stored.sequence, stored.event);
  }
  return true;
}

function foldEvent(fold: SliceFold, sequence: number, event: SliceEvent): void {
  const violation = (invariant: string, expected: string, found: string): void => {
    fold.violations.push({ itemId: fold.itemId, sliceIndex: fold.sliceIndex, sequence, invariant, expected, found });
  };
  if (sequence <= fold.lastSequence) {
    violation('sequence order', `a sequence above ${fold.lastSequence}`, `${sequence}`);
  }
  fold.lastSequence = sequence;
  fold.events++;
  if (fold.events === 1 && event.kind !== 'defined') violation('first event', 'defined', event.kind);
  try {
    evolve(fold.state, event);
  } catch (error) {
    // evolve checks the balance after every event; an oversell shows here, at its sequence.
    violation('no oversell (available, reserved, sold never negative; they sum to stock)', 'balanced figures', (error as Error).message);
  }
  const state = fold.state;
  switch (event.kind) {
    case 'defined':
      fold.definedStock = event.stock;
      if (event.itemId !== fold.itemId || event.sliceIndex !== fold.sliceIndex) {
        violation('slice identity', `item ${fold.itemId} slice ${fold.sliceIndex}`, `item ${event.itemId} slice ${event.sliceIndex}`);
      }
      break;
    case 'restocked':
      fold.restocked += event.quantity;
      break;
    case 'reserved':
    case 'purchased': {
      const held = state.holdings.get(event.userId) ?? 0;
      if (held > state.perUserLimit) {
        violation('per-user limit', `user ${event.userId} holds at most ${state.perUserLimit}`, `${held} after ${event.kind} ${event.kind === 'purchased' ? event.orderId : event.reservationId}`);
      }
      break;
    }
    case 'expired':
      fold.expiredReservations++;
      break;
    case 'cancelled':
      fold.cancelledReservations++;
      break;
    case 'order_cancelled':
      fold.cancelledOrders++;
      break;
    case 'transferred_out':
      if (fold.transfersOut.has(event.transferId)) violation('transfer given once', `transfer ${event.transferId} given once`, 'given twice');
      fold.transfersOut.set(event.transferId, event.quantity);
      break;
    case 'transferred_in':
      if (fold.transfersIn.has(event.transferId)) violation('transfer taken once', `transfer ${event.transferId} taken once`, 'taken twice');
      fold.transfersIn.set(event.transferId, event.quantity);
      break;
    case 'confirmed':
    case 'amended':
    case 'transfer_settled':
      break;
  }
}

export interface ItemTotals {
  readonly itemId: string;
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly inTransfer: number;
}

/**
 * The item's invariants across its slices: every transfer taken was given, with the same
 * quantity, and taken once; and stock is conserved: what the slices hold plus what is still on
 * its way between them is what was defined plus what was restocked.
 */
export function checkItem(itemId: string, folds: readonly SliceFold[]): { totals: ItemTotals; violations: Violation[] } {
  const violations: Violation[] = [];
  const given = new Map<string, { quantity: number; sliceIndex: number }>();
  for (const fold of folds) for (const [transferId, quantity] of fold.transfersOut) given.set(transferId, { quantity, sliceIndex: fold.sliceIndex });
  let taken = 0;
  for (const fold of folds) {
    for (const [transferId, quantity] of fold.transfersIn) {
      const giver = given.get(transferId);
      if (giver === undefined) {
        violations.push({ itemId, sliceIndex: fold.sliceIndex, sequence: null, invariant: 'every transfer matched', expected: `transfer ${transferId} given by a sibling`, found: 'taken, never given' });
      } else if (giver.quantity !== quantity) {
        violations.push({ itemId, sliceIndex: fold.sliceIndex, sequence: null, invariant: 'every transfer matched', expected: `${giver.quantity} units of transfer ${transferId}`, found: `${quantity} taken` });
      }
      taken += quantity;
    }
  }
  const givenUnits = [...given.values()].reduce((sum, giver) => sum + giver.quantity, 0);
  const inTransfer = givenUnits - taken;
  let stock = 0;
  let available = 0;
  let reserved = 0;
  let sold = 0;
  let source = 0;
  for (const fold of folds) {
    stock += fold.state.stock;
    available += fold.state.available;
    reserved += fold.state.reserved;
    sold += fold.state.sold;
    source += fold.definedStock + fold.restocked;
  }
  if (stock + inTransfer !== source) {
    violations.push({
      itemId,
      sliceIndex: null,
      sequence: null,
      invariant: 'conservation across slices and transfers',
      expected: `slices' stock + in transfer = defined + restocked = ${source}`,
      found: `${stock} + ${inTransfer} = ${stock + inTransfer}`,
    });
  }
  if (inTransfer < 0) {
    violations.push({ itemId, sliceIndex: null, sequence: null, invariant: 'every transfer matched', expected: 'no more units taken than given', found: `${-inTransfer} more taken` });
  }
  return { totals: { itemId, stock, available, reserved, sold, inTransfer }, violations };
}
