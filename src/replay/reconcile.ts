/**
 * Reconciliation after a sale: the reservations of an item that expired, were cancelled, and
 * the orders an administrator cancelled, within a time range, read from the journals. For the
 * shop's accounts and for disputes; `seckill replay reconcile` and
 * `GET /admin/items/:id/reconciliation` both use it.
 */
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
import type { StoredItem } from '../persistence/catalog.js';
import { readEventPages } from '../persistence/journalReads.js';
import type { StoredEvent } from '../persistence/journalStore.js';

export interface ReconciliationEntry {
  readonly sliceIndex: number;
  readonly sequence: number;
  readonly atMs: number;
  readonly userId: string;
  readonly quantity: number;
  /** The reservation's id for reservations, the order's id for orders. */
  readonly id: string;
}

export interface Reconciliation {
  readonly itemId: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly expiredReservations: ReconciliationEntry[];
  readonly cancelledReservations: ReconciliationEntry[];
  readonly cancelledOrders: ReconciliationEntry[];
}

export function emptyReconciliation(itemId: string, fromMs: number, toMs: number): Reconciliation {
  return { itemId, fromMs, toMs, expiredReservations: [], cancelledReservations: [], cancelledOrders: [] };
}

/** Takes in one slice's page of events; the range is [fromMs, toMs). */
export function reconcilePage(reconciliation: Reconciliation, sliceIndex: number, page: readonly StoredEvent[]): void {
  for (const { sequence, event } of page) {
    if (event.atMs < reconciliation.fromMs || event.atMs >= reconciliation.toMs) continue;
    const entry = (id: string, e: Extract<SliceEvent, { userId: string; quantity: number }>): ReconciliationEntry => ({
      sliceIndex,
      sequence,
      atMs: e.atMs,
      userId: e.userId,
      quantity: e.quantity,
      id,
    });
    if (event.kind === 'expired') reconciliation.expiredReservations.push(entry(event.reservationId, event));
    else if (event.kind === 'cancelled') reconciliation.cancelledReservations.push(entry(event.reservationId, event));
    else if (event.kind === 'order_cancelled') reconciliation.cancelledOrders.push(entry(event.orderId, event));
  }
}

/** Oldest first, across slices. */
export function sortReconciliation(reconciliation: Reconciliation): Reconciliation {
  const byTime = (left: ReconciliationEntry, right: ReconciliationEntry): number => left.atMs - right.atMs || left.sliceIndex - right.sliceIndex || left.sequence - right.sequence;
  reconciliation.expiredReservations.sort(byTime);
  reconciliation.cancelledReservations.sort(byTime);
  reconciliation.cancelledOrders.sort(byTime);
  return reconciliation;
}

/** The reconciliation of one stored item, read from the journals of its slices. */
export async function reconcileItem(pools: readonly pg.Pool[], item: StoredItem, fromMs: number, toMs: number): Promise<Reconciliation> {
  const reconciliation = emptyReconciliation(item.definition.id, fromMs, toMs);
  for (const [sliceIndex, { sliceId, databaseIndex }] of item.slices.entries()) {
    for await (const page of readEventPages(pools[databaseIndex]!, sliceId, 0)) reconcilePage(reconciliation, sliceIndex, page);
  }
  return sortReconciliation(reconciliation);
}
