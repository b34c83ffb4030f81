/**
 * The replay tool against a real PostgreSQL: it folds the journals, finds projections that
 * disagree with them, and repairs them.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { replayJournals } from '../src/replay.js';
import { OrderDatabases, orderSchema } from '../src/orders/orderDatabases.js';
import { lastTwoDigits, placeOf } from '../src/orders/orderIds.js';
import { storedFigures } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let pool: pg.Pool;
let orderDatabases: OrderDatabases;

beforeAll(async () => {
  database = await createTestDatabase('replay');
  pool = createPool({ connectionString: database.url, connectionsMax: 2 });
  // The engine's default beside a DATABASE_URL: two order databases as schemas in it, 8 tables each.
  orderDatabases = await OrderDatabases.open([database.url, database.url], 8);
});

afterAll(async () => {
  await orderDatabases?.close();
  await pool?.end();
  await database?.drop();
});

describe('replaying the journals', () => {
  it('finds every projection consistent after a sale, then finds and repairs damage', async () => {
    const engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 20 });
    await engine.createItem({ id: '31', name: 'Mug', sellerId: '5', stock: 100, slices: 2, perUserLimit: 2 });
    await Promise.all(Array.from({ length: 60 }, (_, index) => engine.buy({ userId: String(index + 1) }, { itemId: '31', quantity: 1 })));
    const reservation = await engine.reserve({ userId: '1' }, { itemId: '31', quantity: 1 });
    expect(reservation.ok).toBe(true);
    await engine.close();

    const clean = await replayJournals([pool], orderDatabases);
    expect(clean.consistent).toBe(true);
    expect(clean.slices).toHaveLength(2);
    const journalTotals = clean.slices.reduce(
      (total, slice) => ({ sold: total.sold + slice.journal.sold, reserved: total.reserved + slice.journal.reserved, orders: total.orders + slice.journal.orders }),
      { sold: 0, reserved: 0, orders: 0 },
    );
    expect(journalTotals).toEqual({ sold: 60, reserved: 1, orders: 60 });

    // Damage the projections behind the engine's back: a slice's figures, an order's buyer row,
    // and another order's status in the seller dimension.
    const damaged = clean.slices[0]!;
    await pool.query('UPDATE item_inventory SET sold = sold - 1, quantity = quantity + 1 WHERE id = $1', [damaged.sliceId]);
    const orders = await pool.query<{ order_id: string; user_id: string }>(
      `SELECT order_id, user_id FROM journal WHERE slice_id = $1 AND kind = 'purchased' ORDER BY sequence LIMIT 2`,
      [damaged.sliceId],
    );
    const [lost, flipped] = orders.rows as [{ order_id: string; user_id: string }, { order_id: string; user_id: string }];
    const buyerPlace = placeOf(lastTwoDigits(lost.user_id), orderDatabases.layout);
    const sellerPlace = placeOf(lastTwoDigits('5'), orderDatabases.layout);
    const suffix = (tableIndex: number) => String(tableIndex).padStart(2, '0');
    await pool.query(`DELETE FROM ${orderSchema(buyerPlace.databaseIndex)}.order_order_${suffix(buyerPlace.tableIndex)} WHERE id = $1`, [lost.order_id]);
    await pool.query(`UPDATE ${orderSchema(sellerPlace.databaseIndex)}.order_seller_${suffix(sellerPlace.tableIndex)} SET status = 2 WHERE id = $1`, [
      flipped.order_id,
    ]);

    const found = await replayJournals([pool], orderDatabases);
    expect(found.consistent).toBe(false);
    const report = found.slices.find((slice) => slice.sliceId === damaged.sliceId)!;
    expect(report.problems).toEqual([
      `available: journal ${damaged.journal.available}, stored ${damaged.journal.available + 1}`,
      `sold: journal ${damaged.journal.sold}, stored ${damaged.journal.sold - 1}`,
      '1 journaled orders are missing from the buyer dimension',
      '1 orders have another status in the seller dimension than in the journal',
    ]);

    const repaired = await replayJournals([pool], orderDatabases, { repair: true });
    expect(repaired.consistent).toBe(true);
    expect((await replayJournals([pool], orderDatabases)).slices.every((slice) => slice.problems.length === 0)).toBe(true);
    expect(await storedFigures(pool, '31')).toEqual({ stock: 100, available: 39, reserved: 1, sold: 60 });

    // The repaired store starts an engine with the right figures.
    const reopened = await createEngine({ databaseUrl: database.url });
    expect(reopened.item('31')).toMatchObject({ stock: 100, available: 39, reserved: 1, sold: 60 });
    await reopened.close();
  });
});
