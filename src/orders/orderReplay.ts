/**
 * The replay tool's check of the order projection: every order a slice's journal holds must be
 * in its buyer table and in its seller table exactly once (recent or history, not both), with
 * the status the journal gives it, and the tables must hold no other order of the slice. With
 * `repair`, missing rows are written and wrong statuses set from the journal; rows the journal
 * does not know are reported, never deleted.
 */
import { lastTwoDigits, placeOf } from './orderIds.js';
import { tablesAt, type Dimension, type OrderDatabases } from './orderDatabases.js';
import { statusCancelled, statusConfirmed } from './projectionRows.js';

/** An order as the journal's fold says it is. */
export interface JournaledOrder {
  readonly orderId: string;
  readonly userId: string;
  readonly sellerId: string;
  readonly itemId: string;
  readonly sliceId: string;
  readonly quantity: number;
  readonly createdAt: number;
  /** When it was cancelled, or `null`. */
  readonly cancelledAt: number | null;
}

export interface OrderCheck {
  readonly problems: string[];
  readonly repaired: boolean;
}

/** Rows per slice in every table (recent and history together), keyed by dimension, database and table. */
export type RowCounts = ReadonlyMap<string, ReadonlyMap<string, number>>;

function countKey(dimension: Dimension, databaseIndex: number, tableIndex: number): string {
  return `${dimension}/${databaseIndex}/${tableIndex}`;
}

/** Counts every table's rows by slice, one scan per table, for `checkSliceOrders` to find rows no journal knows. */
export async function countRowsBySlice(databases: OrderDatabases): Promise<RowCounts> {
  const counts = new Map<string, Map<string, number>>();
  for (const [databaseIndex, pool] of databases.pools.entries()) {
    for (let tableIndex = 0; tableIndex < databases.layout.tablesPerDatabase; tableIndex++) {
      for (const dimension of ['buyer', 'seller'] as const) {
        const { recent, history } = tablesAt(dimension, tableIndex);
        const result = await pool.query<{ slice_id: string; rows: string }>(
          `SELECT slice_id, count(*) AS rows FROM (SELECT slice_id FROM ${recent} UNION ALL SELECT slice_id FROM ${history}) AS stored
            GROUP BY slice_id`,
        );
        counts.set(countKey(dimension, databaseIndex, tableIndex), new Map(result.rows.map((row) => [row.slice_id, Number(row.rows)])));
      }
    }
  }
  return counts;
}

export async function checkSliceOrders(
  databases: OrderDatabases,
  sliceId: string,
  orders: readonly JournaledOrder[],
  rowCounts: RowCounts,
  repair: boolean,
): Promise<OrderCheck> {
  const problems: string[] = [];
  let repairable = true;
  const toRepair: { dimension: Dimension; databaseIndex: number; tableIndex: number; order: JournaledOrder }[] = [];
  for (const dimension of ['buyer', 'seller'] as const) {
    const partyOf = (order: JournaledOrder) => (dimension === 'buyer' ? order.userId : order.sellerId);
    const byTable = new Map<string, { databaseIndex: number; tableIndex: number; orders: JournaledOrder[]; rowsFound: number }>();
    for (const order of orders) {
      const place = placeOf(lastTwoDigits(partyOf(order)), databases.layout);
      const key = `${place.databaseIndex}/${place.tableIndex}`;
      const group = byTable.get(key) ?? { ...place, orders: [], rowsFound: 0 };
      group.orders.push(order);
      byTable.set(key, group);
    }
    let missing = 0;
    let doubled = 0;
    let wrongStatus = 0;
    for (const group of byTable.values()) {
      const { databaseIndex, tableIndex, orders: expected } = group;
      const { recent, history } = tablesAt(dimension, tableIndex);
      const found = await databases.pool(databaseIndex).query<{ id: string; status: number }>(
        `SELECT id, status FROM ${recent} WHERE id = ANY($1::bigint[])
         UNION ALL SELECT id, status FROM ${history} WHERE id = ANY($1::bigint[])`,
        [expected.map((order) => order.orderId)],
      );
      group.rowsFound = found.rows.length;
      const rows = new Map<string, number[]>();
      for (const row of found.rows) rows.set(row.id, [...(rows.get(row.id) ?? []), row.status]);
      for (const order of expected) {
        const statuses = rows.get(order.orderId) ?? [];
        const status = order.cancelledAt === null ? statusConfirmed : statusCancelled;
        if (statuses.length === 0) missing++;
        else if (statuses.length > 1) doubled++;
        else if (statuses[0] !== status) wrongStatus++;
        if (statuses.length === 0 || (statuses.length === 1 && statuses[0] !== status)) {
          toRepair.push({ dimension, databaseIndex, tableIndex, order });
        }
      }
    }
    // Rows of the slice that are not journaled orders found in their places: orders the
    // journal does not hold, or holds with another buyer or seller.
    let stray = 0;
    for (let databaseIndex = 0; databaseIndex < databases.layout.databases; databaseIndex++) {
      for (let tableIndex = 0; tableIndex < databases.layout.tablesPerDatabase; tableIndex++) {
        const stored = rowCounts.get(countKey(dimension, databaseIndex, tableIndex))?.get(sliceId) ?? 0;
        stray += stored - (byTable.get(`${databaseIndex}/${tableIndex}`)?.rowsFound ?? 0);
      }
    }
    if (missing > 0) problems.push(`${missing} journaled orders are missing from the ${dimension} dimension`);
    if (doubled > 0) problems.push(`${doubled} orders are in both the recent and the history tables of the ${dimension} dimension`);
    if (wrongStatus > 0) problems.push(`${wrongStatus} orders have another status in the ${dimension} dimension than in the journal`);
    if (stray > 0) problems.push(`${stray} rows in the ${dimension} dimension have no journaled order`);
    if (doubled > 0 || stray > 0) repairable = false;
  }
  if (!repair || problems.length === 0 || !repairable) return { problems, repaired: false };
  for (const { dimension, databaseIndex, tableIndex, order } of toRepair) {
    const { recent, history } = tablesAt(dimension, tableIndex);
    const status = order.cancelledAt === null ? statusConfirmed : statusCancelled;
    const modifyTime = order.cancelledAt ?? order.createdAt;
    const pool = databases.pool(databaseIndex);
    const updated = await pool.query(
      `WITH recent AS (UPDATE ${recent} SET status = $2, modify_time = $3 WHERE id = $1 RETURNING 1),
            moved AS (UPDATE ${history} SET status = $2, modify_time = $3 WHERE id = $1 RETURNING 1)
       SELECT (SELECT count(*) FROM recent) + (SELECT count(*) FROM moved) AS rows`,
      [order.orderId, status, modifyTime],
    );
    if (Number((updated.rows[0] as { rows: string }).rows) > 0) continue;
    await pool.query(
      `INSERT INTO ${recent} (id, user_id, order_id, create_time, item_id, status, modify_time, buy_quantity, seller_id, slice_id)
       VALUES ($1, $2, $1, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
      [order.orderId, order.userId, order.createdAt, order.itemId, status, modifyTime, order.quantity, order.sellerId, order.sliceId],
    );
  }
  return { problems, repaired: true };
}
