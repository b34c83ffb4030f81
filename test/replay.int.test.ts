/**
 * The replay tool against a real PostgreSQL: it folds the journals, finds projections that
 * disagree with them, and repairs them.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { replayJournals } from '../src/replay.js';
import { storedFigures } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('replay');
  pool = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
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

    const clean = await replayJournals([pool]);
    expect(clean.consistent).toBe(true);
    expect(clean.slices).toHaveLength(2);
    const journalTotals = clean.slices.reduce(
      (total, slice) => ({ sold: total.sold + slice.journal.sold, reserved: total.reserved + slice.journal.reserved, orders: total.orders + slice.journal.orders }),
      { sold: 0, reserved: 0, orders: 0 },
    );
    expect(journalTotals).toEqual({ sold: 60, reserved: 1, orders: 60 });

    // Damage two projections behind the engine's back: a slice's figures, and an order row.
    const damaged = clean.slices[0]!;
    await pool.query('UPDATE item_inventory SET sold = sold - 1, quantity = quantity + 1 WHERE id = $1', [damaged.sliceId]);
    await pool.query('DELETE FROM order_order WHERE order_id = (SELECT order_id FROM order_order WHERE slice_id = $1 LIMIT 1)', [damaged.sliceId]);

    const found = await replayJournals([pool]);
    expect(found.consistent).toBe(false);
    const report = found.slices.find((slice) => slice.sliceId === damaged.sliceId)!;
    expect(report.problems).toEqual([
      `available: journal ${damaged.journal.available}, stored ${damaged.journal.available + 1}`,
      `sold: journal ${damaged.journal.sold}, stored ${damaged.journal.sold - 1}`,
      '1 journaled orders have no order row',
    ]);

    const repaired = await replayJournals([pool], { repair: true });
    expect(repaired.consistent).toBe(true);
    expect((await replayJournals([pool])).slices.every((slice) => slice.problems.length === 0)).toBe(true);
    expect(await storedFigures(pool, '31')).toEqual({ stock: 100, available: 39, reserved: 1, sold: 60 });

    // The repaired store starts an engine with the right figures.
    const reopened = await createEngine({ databaseUrl: database.url });
    expect(reopened.item('31')).toMatchObject({ stock: 100, available: 39, reserved: 1, sold: 60 });
    await reopened.close();
  });
});
