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
      CREATE TRIGGER refuse_orders BEFORE INSERT ON journal_batch FOR EACH ROW WHEN ('purchased' = ANY (journal_batch_kinds(NEW.payload))) EXECUTE FUNCTION refuse();
      CREATE TRIGGER refuse_claims BEFORE UPDATE ON item_inventory
        FOR EACH ROW WHEN (OLD.owner_epoch <> NEW.owner_epoch) EXECUTE FUNCTION refuse();`);
    const lift = () => admin.query('DROP TRIGGER IF EXISTS refuse_orders ON journal_batch; DROP TRIGGER IF EXISTS refuse_claims ON item_inventory; DROP FUNCTION IF EXISTS refuse();');
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

describe('a shard worker that dies after a batch committed, before the replies crossed back', () => {
  it('answers the buyers with their orders once the slice has recovered, not unavailable', async () => {
    const engine = await createEngine({ databaseUrl: database.url, shards: 1 });
    onTestFinished(() => engine.close());
    const itemId = '901';
    await engine.createItem({ id: itemId, name: 'Lantern', sellerId: '2', stock: 10 });
    // The batch takes a moment to commit: long enough to kill the worker while PostgreSQL runs it.
    await admin.query(`
      CREATE FUNCTION slow_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$;
      CREATE TRIGGER slow_order BEFORE INSERT ON journal_batch FOR EACH ROW WHEN ('purchased' = ANY (journal_batch_kinds(NEW.payload))) EXECUTE FUNCTION slow_order();`);
    const lift = () => admin.query('DROP TRIGGER IF EXISTS slow_order ON journal_batch; DROP FUNCTION IF EXISTS slow_order();');
    onTestFinished(async () => void (await lift()));

    const purchase = engine.buy({ userId: '1' }, { itemId, quantity: 1 });
    await vi.waitFor(
      async () => {
        const sleeping = await admin.query(`SELECT count(*)::int AS count FROM pg_stat_activity WHERE wait_event = 'PgSleep'`);
        expect(sleeping.rows[0].count).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 10 },
    );
    await engine.killShardWorker(0);
    await lift();

    const answer = await purchase;
    const stored = await admin.query(`SELECT order_id FROM journal WHERE kind = 'purchased' AND slice_id IN (SELECT id FROM item_inventory WHERE item_id = $1)`, [itemId]);
    // The truth either way: the order it stored, or `unavailable` and nothing stored.
    if (stored.rowCount === 1) expect(answer).toMatchObject({ ok: true, orderId: stored.rows[0].order_id });
    else expect(answer).toMatchObject({ ok: false, reason: 'unavailable' });
    // Here PostgreSQL finishes the statement long before the replacement worker recovers.
    expect(stored.rowCount).toBe(1);
  });
});
