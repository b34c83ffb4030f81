/**
 * Restock over several slices that cannot all take their share: the caller hears exactly what
 * was applied, and a retry with the restock's key applies only what is missing.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { storedFigures } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('restock');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

describe('a restock that one slice cannot take', () => {
  it('reports exactly what was applied, and a retry with its key applies only the rest, once', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    onTestFinished(() => engine.close());
    const itemId = '950';
    await engine.createItem({ id: itemId, name: 'Bell', sellerId: '2', stock: 2, slices: 2 });
    const sliceRows = await admin.query(`SELECT id FROM item_inventory WHERE item_id = $1 AND slice_index = 1`, [itemId]);
    const secondSlice = sliceRows.rows[0].id as string;
    await admin.query(`
      CREATE FUNCTION refuse_restock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused on purpose'; END $$;
      CREATE TRIGGER refuse_restock BEFORE INSERT ON journal_batch
        FOR EACH ROW WHEN ('restocked' = ANY (journal_batch_kinds(NEW.payload)) AND NEW.slice_id = ${Number(secondSlice)}) EXECUTE FUNCTION refuse_restock();`);
    const lift = () => admin.query('DROP TRIGGER IF EXISTS refuse_restock ON journal_batch; DROP FUNCTION IF EXISTS refuse_restock();');
    onTestFinished(async () => void (await lift()));

    const partial = await engine.restock(itemId, 10);
    expect(partial).toMatchObject({ ok: false, error: 'incomplete', applied: 5, requested: 10 });
    if (partial.ok || partial.idempotencyKey === undefined) throw new Error('no key to retry with');
    // Exactly what it said: the first slice took its 5.
    expect(await storedFigures(admin, itemId)).toMatchObject({ stock: 7 });

    await lift();
    const retried = await engine.restock(itemId, 10, partial.idempotencyKey);
    expect(retried).toMatchObject({ ok: true, value: { stock: 12, available: 12 } });
    // Retried again (say its reply was lost): nothing more.
    expect(await engine.restock(itemId, 10, partial.idempotencyKey)).toMatchObject({ ok: true, value: { stock: 12 } });
    expect(await storedFigures(admin, itemId)).toMatchObject({ stock: 12, available: 12 });
  });

  it('applied everywhere, is a no-op when retried with the key the caller chose', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    onTestFinished(() => engine.close());
    const itemId = '951';
    await engine.createItem({ id: itemId, name: 'Horn', sellerId: '2', stock: 0, slices: 3 });
    expect(await engine.restock(itemId, 7, 'spring-delivery')).toMatchObject({ ok: true, value: { stock: 7 } });
    expect(await engine.restock(itemId, 7, 'spring-delivery')).toMatchObject({ ok: true, value: { stock: 7 } });
    expect(await engine.restock(itemId, 7, 'summer-delivery')).toMatchObject({ ok: true, value: { stock: 14 } });
    expect(await engine.restock(itemId, 7, 'x'.repeat(65))).toMatchObject({ ok: false, error: 'invalid' });
  });
});
