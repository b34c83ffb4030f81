/**
 * Slices on shard workers under faults: what readiness says while a slice reloads, and what a
 * buyer hears when the worker holding their request dies.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('shard_faults');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

describe('readiness with shard workers', () => {
  it('follows the slice: not ready while a slice on a worker reloads, ready again once it has', async () => {
    const engine = await createEngine({ databaseUrl: database.url, shards: 1 });
    onTestFinished(() => engine.close());
    const itemId = '900';
    await engine.createItem({ id: itemId, name: 'Clock', sellerId: '2', stock: 10 });
    expect(engine.ready).toBe(true);

    // The journal refuses orders, and the slice cannot claim its journal back, so it stays
    // reloading until both are lifted.
    await admin.query(`
      CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused on purpose'; END $$;
      CREATE TRIGGER refuse_orders BEFORE INSERT ON journal FOR EACH ROW WHEN (NEW.kind = 'purchased') EXECUTE FUNCTION refuse();
      CREATE TRIGGER refuse_claims BEFORE UPDATE ON item_inventory
        FOR EACH ROW WHEN (OLD.owner_epoch <> NEW.owner_epoch) EXECUTE FUNCTION refuse();`);
    const lift = () => admin.query('DROP TRIGGER IF EXISTS refuse_orders ON journal; DROP TRIGGER IF EXISTS refuse_claims ON item_inventory; DROP FUNCTION IF EXISTS refuse();');
    onTestFinished(async () => void (await lift()));
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ reason: 'unavailable' });
    await vi.waitFor(() => expect(engine.ready).toBe(false), { timeout: 5_000, interval: 10 });
    // It stays so while the slice cannot recover.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(engine.ready).toBe(false);

    await lift();
    await vi.waitFor(() => expect(engine.ready).toBe(true), { timeout: 10_000, interval: 50 });
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
  });
});
