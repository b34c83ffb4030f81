/**
 * Turns committed journal events into what one order database must write: its buyer rows, its
 * seller rows, the cancellations of orders it already holds, and its new positions. Pure: no
 * I/O, no clock, so it is unit-tested without a database.
 *
 * An order and its cancellation in the same batch become one row written as cancelled, because
 * the statement's parts all see the database as it was before the statement.
 */
import type { CommittedEvent } from './journalReader.js';
import { lastTwoDigits, placeOf, type OrderLayout } from './orderIds.js';

/** What the projection needs to know of a slice beyond its events. */
export interface SliceFacts {
  readonly itemId: string;
  readonly sellerId: string;
}

export const statusConfirmed = 1;
export const statusCancelled = 2;

/** Order rows as parallel arrays, each row with the index of the table it goes to. */
export interface OrderRowColumns {
  readonly orderIds: string[];
  readonly userIds: string[];
  readonly sellerIds: string[];
  readonly itemIds: string[];
  readonly sliceIds: string[];
  readonly quantities: number[];
  readonly statuses: number[];
  readonly createTimes: number[];
  readonly modifyTimes: number[];
  readonly tableIndexes: number[];
}

export interface CancellationColumns {
  readonly orderIds: string[];
  readonly modifyTimes: number[];
  readonly tableIndexes: number[];
}

export interface ProjectionBatch {
  readonly buyerRows: OrderRowColumns;
  readonly sellerRows: OrderRowColumns;
  readonly buyerCancellations: CancellationColumns;
  readonly sellerCancellations: CancellationColumns;
  /** Every slice read from, with the position the database had and the one it moves to. */
  readonly positions: { readonly sliceIds: string[]; readonly previous: number[]; readonly sequences: number[] };
  /** When each order or cancellation written here was decided, for the projection lag. */
  readonly decidedAtMs: number[];
}

function emptyRows(): OrderRowColumns {
  return {
    orderIds: [],
    userIds: [],
    sellerIds: [],
    itemIds: [],
    sliceIds: [],
    quantities: [],
    statuses: [],
    createTimes: [],
    modifyTimes: [],
    tableIndexes: [],
  };
}

function emptyCancellations(): CancellationColumns {
  return { orderIds: [], modifyTimes: [], tableIndexes: [] };
}

interface PlannedOrder {
  orderId: string;
  userId: string;
  sellerId: string;
  itemId: string;
  sliceId: string;
  quantity: number;
  status: number;
  createTime: number;
  modifyTime: number;
}

/**
 * What order database `databaseIndex` writes for `events`, read after `positions` (the
 * database's own). Events at or below a slice's position were taken in before and are skipped.
 */
export function planProjection(
  events: readonly CommittedEvent[],
  positions: ReadonlyMap<string, number>,
  factsOf: (sliceId: string) => SliceFacts,
  layout: OrderLayout,
  databaseIndex: number,
): ProjectionBatch {
  const orders = new Map<string, PlannedOrder>();
  const cancellations: { orderId: string; userId: string; sellerId: string; atMs: number }[] = [];
  const lastSequences = new Map<string, number>();
  const decidedAtMs: number[] = [];
  const here = (partyId: string) => placeOf(lastTwoDigits(partyId), layout).databaseIndex === databaseIndex;

  for (const { sliceId, sequence, event } of events) {
    const previous = positions.get(sliceId) ?? 0;
    if (sequence <= previous) continue;
    lastSequences.set(sliceId, Math.max(lastSequences.get(sliceId) ?? 0, sequence));
    if (event.kind !== 'purchased' && event.kind !== 'confirmed' && event.kind !== 'order_cancelled') continue;
    const { sellerId, itemId } = factsOf(sliceId);
    if (!here(event.userId) && !here(sellerId)) continue;
    decidedAtMs.push(event.atMs);
    if (event.kind === 'order_cancelled') {
      const planned = orders.get(event.orderId);
      if (planned === undefined) {
        cancellations.push({ orderId: event.orderId, userId: event.userId, sellerId, atMs: event.atMs });
      } else {
        planned.status = statusCancelled;
        planned.modifyTime = event.atMs;
      }
      continue;
    }
    orders.set(event.orderId, {
      orderId: event.orderId,
      userId: event.userId,
      sellerId,
      itemId,
      sliceId,
      quantity: event.quantity,
      status: statusConfirmed,
      createTime: event.atMs,
      modifyTime: event.atMs,
    });
  }

  const buyerRows = emptyRows();
  const sellerRows = emptyRows();
  for (const order of orders.values()) {
    if (here(order.userId)) pushRow(buyerRows, order, placeOf(lastTwoDigits(order.userId), layout).tableIndex);
    if (here(order.sellerId)) pushRow(sellerRows, order, placeOf(lastTwoDigits(order.sellerId), layout).tableIndex);
  }
  const buyerCancellations = emptyCancellations();
  const sellerCancellations = emptyCancellations();
  for (const cancellation of cancellations) {
    for (const [partyId, columns] of [
      [cancellation.userId, buyerCancellations],
      [cancellation.sellerId, sellerCancellations],
    ] as const) {
      if (!here(partyId)) continue;
      columns.orderIds.push(cancellation.orderId);
      columns.modifyTimes.push(cancellation.atMs);
      columns.tableIndexes.push(placeOf(lastTwoDigits(partyId), layout).tableIndex);
    }
  }
  const sliceIds = [...lastSequences.keys()];
  return {
    buyerRows,
    sellerRows,
    buyerCancellations,
    sellerCancellations,
    positions: {
      sliceIds,
      previous: sliceIds.map((sliceId) => positions.get(sliceId) ?? 0),
      sequences: sliceIds.map((sliceId) => lastSequences.get(sliceId)!),
    },
    decidedAtMs,
  };
}

function pushRow(columns: OrderRowColumns, order: PlannedOrder, tableIndex: number): void {
  columns.orderIds.push(order.orderId);
  columns.userIds.push(order.userId);
  columns.sellerIds.push(order.sellerId);
  columns.itemIds.push(order.itemId);
  columns.sliceIds.push(order.sliceId);
  columns.quantities.push(order.quantity);
  columns.statuses.push(order.status);
  columns.createTimes.push(order.createTime);
  columns.modifyTimes.push(order.modifyTime);
  columns.tableIndexes.push(tableIndex);
}

/** True when the batch writes nothing but positions. */
export function writesNoRows(batch: ProjectionBatch): boolean {
  return (
    batch.buyerRows.orderIds.length === 0 &&
    batch.sellerRows.orderIds.length === 0 &&
    batch.buyerCancellations.orderIds.length === 0 &&
    batch.sellerCancellations.orderIds.length === 0
  );
}
