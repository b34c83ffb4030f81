/**
 * Creating an item across two inventory databases when the primary's write fails or its
 * answer is lost: nothing left behind blocks the id, and the administrator hears the truth.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createEngine } from '../src/engine.js';
import { parseItemDefinition } from '../src/items.js';
import { Catalog } from '../src/persistence/catalog.js';
import { migrate } from '../src/persistence/migrations.js';
import { createPool } from '../src/persistence/pools.js';
import { connectionLost, withQueryHook, type FlushHook } from './support/faultyPool.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let primary: TestDatabase;
let secondary: TestDatabase;
let admin: pg.Pool;
let admin2: pg.Pool;

beforeAll(async () => {
  primary = await createTestDatabase('catalog');
  secondary = await createTestDatabase('catalog_inventory2');
  admin = createPool({ connectionString: primary.url, connectionsMax: 2 });
  admin2 = createPool({ connectionString: secondary.url, connectionsMax: 2 });
  await migrate(admin);
  await migrate(admin2);
});

afterAll(async () => {
  await admin?.end();
  await admin2?.end();
  await primary?.drop();
  await secondary?.drop();
});

describe('a create whose catalog row fails on the primary', () => {
  it('leaves nothing on the other database that blocks the id: the next create of it succeeds', async () => {
    const engine = await createEngine({ databaseUrl: primary.url, extraInventoryDatabaseUrls: [secondary.url] });
    onTestFinished(() => engine.close());
    await admin.query(`
      CREATE FUNCTION refuse_item() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused on purpose'; END $$;
      CREATE TRIGGER refuse_item BEFORE INSERT ON sale_item FOR EACH ROW EXECUTE FUNCTION refuse_item();`);
    const body = { id: '70', name: 'Tent', sellerId: '3', stock: 8, slices: 4 };
    expect(await engine.createItem(body)).toMatchObject({ ok: false, error: 'unavailable' });
    expect(engine.item('70')).toBeUndefined();
    await admin.query('DROP TRIGGER refuse_item ON sale_item; DROP FUNCTION refuse_item();');

    expect(await engine.createItem(body)).toMatchObject({ ok: true, value: { id: '70', stock: 8 } });
    expect(await engine.buy({ userId: '1' }, { itemId: '70', quantity: 1 })).toMatchObject({ ok: true });
    expect(await engine.buy({ userId: '2' }, { itemId: '70', quantity: 1 })).toMatchObject({ ok: true });
    // Exactly this item's slices on the second database: none of the failed attempt's.
    const rows = await admin2.query(`SELECT count(*)::int AS count FROM item_inventory WHERE item_id = 70 AND parent_id IS NOT NULL`);
    expect(rows.rows[0].count).toBe(2);
  });
});

describe('a create whose commit on the primary is answered with a lost connection', () => {
  it('reports the item as created when the commit went through', async () => {
    let lose = true;
    const hooked = withQueryHook(admin, (text) => text === 'COMMIT', () =>
      lose
        ? ((async (run) => {
            lose = false;
            await run();
            throw connectionLost();
          }) satisfies FlushHook)
        : undefined,
    );
    const catalog = new Catalog([hooked, admin2]);
    const parsed = parseItemDefinition({ id: '71', name: 'Stove', sellerId: '3', stock: 4, slices: 2 }, Date.now(), 1);
    if (!parsed.ok) throw new Error(parsed.message);
    const placements = await catalog.insertItem(parsed.definition, Date.now());
    expect(placements).toHaveLength(2);
    const stored = (await new Catalog([admin, admin2]).loadItems()).find((item) => item.definition.id === '71');
    expect(stored?.slices).toEqual(placements);
  });
});
