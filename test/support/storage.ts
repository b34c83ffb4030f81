/** Reads what is committed, straight from the tables, to check the engine against. */
import type pg from 'pg';

export interface StoredFigures {
  stock: number;
  available: number;
  reserved: number;
  sold: number;
}

/** The item's figures summed over its slice rows in `item_inventory`. */
export async function storedFigures(pool: pg.Pool, itemId: string): Promise<StoredFigures> {
  const result = await pool.query<{ stock: string; available: string; reserved: string; sold: string }>(
    `SELECT sum(stock) AS stock, sum(quantity) AS available, sum(reserved) AS reserved, sum(sold) AS sold
       FROM seckill.item_inventory WHERE item_id = $1 AND parent_id IS NOT NULL`,
    [itemId],
  );
  const row = result.rows[0]!;
  return { stock: Number(row.stock), available: Number(row.available), reserved: Number(row.reserved), sold: Number(row.sold) };
}

/**
 * The ids of the item's orders as its journals hold them on this inventory database: the
 * journal is where an order is stored when it is acknowledged (the order tables are
 * projections of it, checked with test/support/orderTables.ts).
 */
export async function storedOrderIds(pool: pg.Pool, itemId: string): Promise<string[]> {
  const result = await pool.query<{ order_id: string }>(
    `SELECT journal.order_id FROM seckill.journal
       JOIN seckill.item_inventory AS slice ON slice.id = journal.slice_id AND slice.parent_id IS NOT NULL
      WHERE slice.item_id = $1 AND journal.kind IN ('confirmed', 'purchased')`,
    [itemId],
  );
  return result.rows.map((row) => row.order_id);
}

/** The item's figures summed over every inventory database. */
export async function storedFiguresAcross(pools: readonly pg.Pool[], itemId: string): Promise<StoredFigures> {
  const parts = await Promise.all(pools.map((pool) => storedFigures(pool, itemId)));
  return parts.reduce((total, part) => ({
    stock: total.stock + part.stock,
    available: total.available + part.available,
    reserved: total.reserved + part.reserved,
    sold: total.sold + part.sold,
  }));
}

export async function storedOrderIdsAcross(pools: readonly pg.Pool[], itemId: string): Promise<string[]> {
  return (await Promise.all(pools.map((pool) => storedOrderIds(pool, itemId)))).flat();
}

/** Every order id the journals of these inventory databases hold, of every item. */
export async function allStoredOrderIds(pools: readonly pg.Pool[]): Promise<string[]> {
  const parts = await Promise.all(
    pools.map((pool) =>
      pool.query<{ order_id: string }>(`SELECT order_id FROM seckill.journal WHERE kind IN ('confirmed', 'purchased')`),
    ),
  );
  return parts.flatMap((result) => result.rows.map((row) => row.order_id));
}
