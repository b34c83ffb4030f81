/**
 * Reading orders: a buyer's or a seller's, newest first, a page at a time, from the recent and
 * the history table of their place together; and one order by its id.
 *
 * Each page is one statement over both tables, so it sees one snapshot: the history job moves
 * an order from one table to the other in one transaction, so the page holds it exactly once.
 * Pages follow each other by a cursor, the (create time, order id) of the last order shown,
 * which does not depend on where an order lives, so a move between two pages neither drops nor
 * repeats it.
 */
import type pg from 'pg';
import { decomposeOrderId, lastTwoDigits, placeOf, type OrderLayout } from './orderIds.js';
import { tablesAt, type Dimension, type OrderDatabases } from './orderDatabases.js';
import { statusCancelled } from './projectionRows.js';

/** An order as the wire contract shows it. */
export interface OrderView {
  readonly orderId: string;
  readonly itemId: string;
  readonly userId: string;
  readonly sellerId: string;
  readonly qty: number;
  readonly status: 'confirmed' | 'cancelled';
  readonly createdAt: number;
}

/** An order with what cancelling it needs: the slice whose journal holds it. */
export interface StoredOrder extends OrderView {
  readonly sliceId: string;
}

export interface PageRequest {
  /** Orders per page; default and most `orderPageSizeMax`. */
  readonly limit?: number | undefined;
  /** The `next` of the previous page; absent for the first. */
  readonly cursor?: string | undefined;
}

export interface OrderPage {
  readonly orders: OrderView[];
  /** The cursor of the next page, or `null` when this page is the last. */
  readonly next: string | null;
}

/** The largest page, and the size of a page asked for without one: the most the engine ever answered at once. */
export const orderPageSizeMax = 1_000;

export interface Cursor {
  readonly createdAt: number;
  readonly orderId: string;
}

export function encodeCursor(view: Pick<OrderView, 'createdAt' | 'orderId'>): string {
  return `${view.createdAt}.${view.orderId}`;
}

/** The cursor in `text`, or `null` when it is not one this engine made. */
export function decodeCursor(text: string): Cursor | null {
  const match = /^([0-9]{1,16})\.([1-9][0-9]{0,18})$/.exec(text);
  if (match === null) return null;
  const createdAt = Number(match[1]);
  if (!Number.isSafeInteger(createdAt) || BigInt(match[2]!) > 9_223_372_036_854_775_807n) return null;
  return { createdAt, orderId: match[2]! };
}

/** Newest first: later creation first, and the larger id first within one millisecond. */
export function newestFirst(left: OrderView, right: OrderView): number {
  if (left.createdAt !== right.createdAt) return right.createdAt - left.createdAt;
  const leftId = BigInt(left.orderId);
  const rightId = BigInt(right.orderId);
  return leftId === rightId ? 0 : leftId > rightId ? -1 : 1;
}

/** Whether `view` comes after the cursor in newest-first order. */
export function isAfterCursor(view: OrderView, cursor: Cursor | null): boolean {
  if (cursor === null) return true;
  return view.createdAt < cursor.createdAt || (view.createdAt === cursor.createdAt && BigInt(view.orderId) < BigInt(cursor.orderId));
}

interface OrderRow {
  order_id: string;
  item_id: string;
  user_id: string;
  seller_id: string;
  buy_quantity: string;
  status: number;
  create_time: string;
  slice_id: string;
}

const selectedColumns = 'order_id, item_id, user_id, seller_id, buy_quantity, status, create_time, slice_id';

function viewOf(row: OrderRow): StoredOrder {
  return {
    orderId: row.order_id,
    itemId: row.item_id,
    userId: row.user_id,
    sellerId: row.seller_id,
    qty: Number(row.buy_quantity),
    status: row.status === statusCancelled ? 'cancelled' : 'confirmed',
    createdAt: Number(row.create_time),
    sliceId: row.slice_id,
  };
}

/** The views of a page, without the slice each order lives on. */
function publicView({ sliceId: _sliceId, ...view }: StoredOrder): OrderView {
  return view;
}

export class OrderQueries {
  constructor(private readonly databases: OrderDatabases) {}

  private get layout(): OrderLayout {
    return this.databases.layout;
  }

  /**
   * A page of a buyer's (or a seller's) orders from the tables, newest first, strictly after
   * `cursor`, at most `limit`.
   */
  async page(dimension: Dimension, partyId: string, cursor: Cursor | null, limit: number): Promise<OrderView[]> {
    const place = placeOf(lastTwoDigits(partyId), this.layout);
    const { recent, history } = tablesAt(dimension, place.tableIndex);
    const party = dimension === 'buyer' ? 'user_id' : 'seller_id';
    // The row comparison and the ordering match each table's (party, create_time, order_id) index.
    const inTable = (table: string) =>
      `(SELECT ${selectedColumns} FROM ${table}
         WHERE ${party} = $1 AND (create_time, order_id) < ($2, $3)
         ORDER BY create_time DESC, order_id DESC LIMIT $4)`;
    const result = await this.databases.pool(place.databaseIndex).query<OrderRow>(
      `SELECT * FROM (${inTable(recent)} UNION ALL ${inTable(history)}) AS orders
        ORDER BY create_time DESC, order_id DESC LIMIT $4`,
      [partyId, cursor?.createdAt ?? Number.MAX_SAFE_INTEGER, cursor?.orderId ?? '9223372036854775807', limit],
    );
    return result.rows.map((row) => publicView(viewOf(row)));
  }

  /**
   * One order by its id, from the buyer table its digits name. An id made before orders were
   * placed by their digits is looked for in every buyer table.
   */
  async find(orderId: string): Promise<StoredOrder | undefined> {
    const { buyerDigits } = decomposeOrderId(orderId);
    const place = placeOf(buyerDigits, this.layout);
    const found = await this.findAt(orderId, place.databaseIndex, place.tableIndex);
    if (found !== undefined) return found;
    for (let databaseIndex = 0; databaseIndex < this.layout.databases; databaseIndex++) {
      for (let tableIndex = 0; tableIndex < this.layout.tablesPerDatabase; tableIndex++) {
        if (databaseIndex === place.databaseIndex && tableIndex === place.tableIndex) continue;
        const elsewhere = await this.findAt(orderId, databaseIndex, tableIndex);
        if (elsewhere !== undefined) return elsewhere;
      }
    }
    return undefined;
  }

  /** The order as the seller dimension holds it, or `undefined`. */
  async findForSeller(orderId: string, sellerId: string): Promise<OrderView | undefined> {
    const place = placeOf(lastTwoDigits(sellerId), this.layout);
    const { recent, history } = tablesAt('seller', place.tableIndex);
    const result = await this.databases.pool(place.databaseIndex).query<OrderRow>(
      `SELECT ${selectedColumns} FROM ${recent} WHERE id = $1 UNION ALL SELECT ${selectedColumns} FROM ${history} WHERE id = $1`,
      [orderId],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : publicView(viewOf(row));
  }

  private async findAt(orderId: string, databaseIndex: number, tableIndex: number): Promise<StoredOrder | undefined> {
    const { recent, history } = tablesAt('buyer', tableIndex);
    const result = await this.databases.pool(databaseIndex).query<OrderRow>(
      `SELECT ${selectedColumns} FROM ${recent} WHERE id = $1 UNION ALL SELECT ${selectedColumns} FROM ${history} WHERE id = $1`,
      [orderId],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : viewOf(row);
  }
}
