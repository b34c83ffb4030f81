/**
 * Reads the order projection straight from the order databases' tables, to check that every
 * order is in its buyer table and in its seller table exactly once, where its digits say.
 */
import { expect } from 'vitest';
import { OrderDatabases, tablesAt, type Dimension } from '../../src/orders/orderDatabases.js';
import { lastTwoDigits, placeOf } from '../../src/orders/orderIds.js';

export interface ProjectedRow {
  readonly orderId: string;
  readonly userId: string;
  readonly sellerId: string;
  readonly status: number;
  readonly databaseIndex: number;
  readonly tableIndex: number;
  readonly history: boolean;
}

/** Every row of one dimension, over every order database, table, recent and history. */
export async function projectedRows(databases: OrderDatabases, dimension: Dimension): Promise<ProjectedRow[]> {
  const rows: ProjectedRow[] = [];
  for (const [databaseIndex, pool] of databases.pools.entries()) {
    for (let tableIndex = 0; tableIndex < databases.layout.tablesPerDatabase; tableIndex++) {
      const { recent, history } = tablesAt(dimension, tableIndex);
      const result = await pool.query<{ order_id: string; user_id: string; seller_id: string; status: number; moved: boolean }>(
        `SELECT order_id, user_id, seller_id, status, false AS moved FROM ${recent}
         UNION ALL SELECT order_id, user_id, seller_id, status, true AS moved FROM ${history}`,
      );
      for (const row of result.rows) {
        rows.push({
          orderId: row.order_id,
          userId: row.user_id,
          sellerId: row.seller_id,
          status: row.status,
          databaseIndex,
          tableIndex,
          history: row.moved,
        });
      }
    }
  }
  return rows;
}

/**
 * Asserts that the projection holds exactly `orderIds` (no other order), each once in the buyer
 * dimension and once in the seller dimension, at the place its buyer's and seller's digits name.
 */
export async function expectProjectedExactlyOnce(databases: OrderDatabases, orderIds: Iterable<string>): Promise<void> {
  const expected = new Set(orderIds);
  for (const dimension of ['buyer', 'seller'] as const) {
    const rows = await projectedRows(databases, dimension);
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.orderId, (counts.get(row.orderId) ?? 0) + 1);
    const missing = [...expected].filter((orderId) => !counts.has(orderId));
    const doubled = [...counts].filter(([, count]) => count > 1).map(([orderId]) => orderId);
    const unknown = [...counts.keys()].filter((orderId) => !expected.has(orderId));
    expect({ dimension, missing, doubled, unknown }).toEqual({ dimension, missing: [], doubled: [], unknown: [] });
    const misplaced = rows.filter((row) => {
      const place = placeOf(lastTwoDigits(dimension === 'buyer' ? row.userId : row.sellerId), databases.layout);
      return place.databaseIndex !== row.databaseIndex || place.tableIndex !== row.tableIndex;
    });
    expect(misplaced).toEqual([]);
  }
}
