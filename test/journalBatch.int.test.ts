/**
 * The journal as one row per slice per flush, against a real PostgreSQL: a data directory made
 * before the change (its events one row each, in `journal_event`) recovers, sells on, projects
 * and replays with its newer batch rows after the old ones; and the `journal` view shows both
 * as one event per row, as psql users read it.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine.js';
import { OrderDatabases } from '../src/orders/orderDatabases.js';
import { createPool } from '../src/persistence/pools.js';
import { replayJournals } from '../src/replay.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('journal_batch');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

const buyers = (from: number, count: number, itemId: string, engine: Awaited<ReturnType<typeof createEngine>>) =>
  Promise.all(Array.from({ length: count }, (_, index) => engine.buy({ userId: String(from + index) }, { itemId, quantity: 1 })));

describe('a journal whose older events are rows of the per-event table', () => {
  it('recovers, sells on, projects every order once and replays consistent, old rows before new', async () => {
    const itemId = '41';
    const first = await createEngine({ databaseUrl: database.url, snapshotEvery: 1_000_000 });
    await first.createItem({ id: itemId, name: 'Kettle', sellerId: '9', stock: 50, slices: 2, perUserLimit: 1 });
    expect((await buyers(100, 20, itemId, first)).every((result) => result.ok)).toBe(true);
    await first.idle();
    await first.close();

    // Turn the item's batch rows into the per-event rows a data directory made before the change
    // holds, through the view that unpacks them.
    const slices = `SELECT id FROM item_inventory WHERE item_id = ${itemId} AND parent_id IS NOT NULL`;
    const moved = await admin.query(`INSERT INTO journal_event SELECT * FROM journal WHERE slice_id IN (${slices})`);
    await admin.query(`DELETE FROM journal_batch WHERE slice_id IN (${slices})`);
    expect(moved.rowCount).toBeGreaterThanOrEqual(22);

    const second = await createEngine({ databaseUrl: database.url, snapshotEvery: 1_000_000 });
    expect(second.item(itemId)).toMatchObject({ stock: 50, sold: 20, available: 30 });
    // The limit of one per buyer was recovered from the old rows.
    expect(await second.buy({ userId: '100' }, { itemId, quantity: 1 })).toMatchObject({ ok: false, reason: 'limit_exceeded' });
    expect((await buyers(200, 30, itemId, second)).every((result) => result.ok)).toBe(true);
    expect(await second.buy({ userId: '300' }, { itemId, quantity: 1 })).toMatchObject({ ok: false, reason: 'sold_out' });
    await second.idle();
    await second.close();

    const batchRows = await admin.query(`SELECT count(*)::int AS count FROM journal_batch WHERE slice_id IN (${slices})`);
    expect(batchRows.rows[0].count).toBeGreaterThan(0);
    // One event per row through the view, old and new, each sequence once per slice.
    const viewed = await admin.query(
      `SELECT slice_id, count(*)::int AS events, count(DISTINCT sequence)::int AS sequences,
              count(*) FILTER (WHERE kind = 'purchased')::int AS orders
         FROM journal WHERE slice_id IN (${slices}) GROUP BY slice_id`,
    );
    for (const row of viewed.rows) expect(row.events).toBe(row.sequences);
    expect(viewed.rows.reduce((sum, row) => sum + row.orders, 0)).toBe(50);

    const third = await createEngine({ databaseUrl: database.url });
    expect(third.item(itemId)).toMatchObject({ stock: 50, sold: 50, available: 0 });
    await third.close();
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 50, available: 0, reserved: 0, sold: 50 });
    expect(new Set(await storedOrderIds(admin, itemId)).size).toBe(50);

    const orderDatabases = await OrderDatabases.open([database.url, database.url], 8);
    try {
      const report = await replayJournals([admin], orderDatabases);
      expect(report.slices.filter((slice) => slice.problems.length > 0)).toEqual([]);
      expect(report.slices.reduce((sum, slice) => sum + slice.journal.orders, 0)).toBe(50);
    } finally {
      await orderDatabases.close();
    }
  });
});
