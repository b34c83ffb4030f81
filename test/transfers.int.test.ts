/**
 * Stock moving between the slices of an item, and the ids that name transfers and
 * reservations, under faults: a shard worker killed while a transfer commits, a receiver that
 * cannot take a transfer, a clock that steps back across a restart.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { SimulatedClock } from '../src/clock.js';
import { createEngine } from '../src/engine.js';
import { sliceIndexFor } from '../src/items.js';
import { createPool } from '../src/persistence/pools.js';
import { storedFigures } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('transfers');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

/** `count` user ids that all hash to `sliceIndex` of `slices`. */
function usersOfSlice(sliceIndex: number, slices: number, count: number, start = 1): string[] {
  const users: string[] = [];
  for (let candidate = start; users.length < count; candidate++) {
    if (sliceIndexFor(String(candidate), slices) === sliceIndex) users.push(String(candidate));
  }
  return users;
}

/** Makes every journal insert of `kind` run `body` (PL/pgSQL) first; returns the undo. */
async function onJournalInsert(kind: string, body: string): Promise<() => Promise<void>> {
  const name = `on_${kind}_${Math.random().toString(36).slice(2, 8)}`;
  await admin.query(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body} RETURN NEW; END $$;
    CREATE TRIGGER ${name} BEFORE INSERT ON journal_batch FOR EACH ROW WHEN ('${kind}' = ANY (journal_batch_kinds(NEW.payload))) EXECUTE FUNCTION ${name}();`);
  return async () => {
    await admin.query(`DROP TRIGGER ${name} ON journal_batch; DROP FUNCTION ${name}();`);
  };
}

describe('a transfer whose receiver commits it while its shard worker dies', () => {
  it('leaves no phantom stock in transfer: the item view holds exactly the stock', async () => {
    const engine = await createEngine({ databaseUrl: database.url, shards: 2 });
    onTestFinished(() => engine.close());
    const itemId = '800';
    await engine.createItem({ id: itemId, name: 'Globe', sellerId: '2', stock: 2, slices: 2 });
    const [first, second] = usersOfSlice(0, 2, 2) as [string, string];
    expect(await engine.buy({ userId: first }, { itemId, quantity: 1 })).toMatchObject({ ok: true });

    // The receiver's commit of the transfer takes a moment, long enough to kill its worker
    // while the statement runs; PostgreSQL commits it anyway.
    const undo = await onJournalInsert('transferred_in', 'PERFORM pg_sleep(0.3);');
    onTestFinished(() => undo().catch(() => undefined));
    const purchase = engine.buy({ userId: second }, { itemId, quantity: 1 });
    await vi.waitFor(
      async () => {
        const sleeping = await admin.query(`SELECT count(*)::int AS count FROM pg_stat_activity WHERE wait_event = 'PgSleep'`);
        expect(sleeping.rows[0].count).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 10 },
    );
    const receiverShard = (sliceIndexFor(itemId, 1_024) + 0) % 2;
    await engine.killShardWorker(receiverShard);
    await undo();

    expect(await purchase).toMatchObject({ ok: true });
    const stored = await storedFigures(admin, itemId);
    expect(stored).toEqual({ stock: 2, available: 0, reserved: 0, sold: 2 });
    await vi.waitFor(() => expect(engine.item(itemId)).toMatchObject({ ...stored, status: 'sold_out' }), { timeout: 10_000 });
    // Sold out, and answered so from memory.
    expect(await engine.buy({ userId: second }, { itemId, quantity: 1 })).toMatchObject({ reason: 'sold_out' });
    await engine.close();
  });
});

describe('a transfer its receiver cannot take', () => {
  it('answers the buyer waiting on it within seconds, keeps the units counted, and delivers them once it can', async () => {
    let engine = await createEngine({ databaseUrl: database.url });
    onTestFinished(() => engine.close());
    const itemId = '801';
    await engine.createItem({ id: itemId, name: 'Kite', sellerId: '2', stock: 2, slices: 2 });
    const [first, second, third] = usersOfSlice(0, 2, 3) as [string, string, string];
    expect(await engine.buy({ userId: first }, { itemId, quantity: 1 })).toMatchObject({ ok: true });

    const undo = await onJournalInsert('transferred_in', `RAISE EXCEPTION 'transfer refused on purpose';`);
    onTestFinished(() => undo().catch(() => undefined));
    const startedAt = performance.now();
    // Nothing changed for this buyer: `unavailable` is the truth, and it comes within a bound.
    expect(await engine.buy({ userId: second }, { itemId, quantity: 1 })).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(performance.now() - startedAt).toBeLessThan(10_000);
    // The unit is on its way: counted, on sale, the item balanced.
    expect(engine.item(itemId)).toMatchObject({ stock: 2, available: 1, sold: 1, status: 'on_sale' });

    // A start while the transfer still cannot be delivered is bounded too.
    await engine.close();
    const restartedAt = performance.now();
    engine = await createEngine({ databaseUrl: database.url });
    expect(performance.now() - restartedAt).toBeLessThan(15_000);
    expect(engine.item(itemId)).toMatchObject({ stock: 2, available: 1, sold: 1 });

    // Once the receiver can take it, the transfer arrives without a restart.
    await undo();
    await vi.waitFor(async () => expect(await engine.buy({ userId: third }, { itemId, quantity: 1 })).toMatchObject({ ok: true }), {
      timeout: 15_000,
      interval: 200,
    });
    expect(engine.item(itemId)).toMatchObject({ stock: 2, available: 0, sold: 2, status: 'sold_out' });
    await engine.close();
  });
});

describe('reservation ids', () => {
  it('never repeat when the clock steps back across a restart', async () => {
    const instant = Date.now();
    let engine = await createEngine({ databaseUrl: database.url, clock: new SimulatedClock(instant) });
    onTestFinished(() => engine.close());
    const itemId = '802';
    await engine.createItem({ id: itemId, name: 'Drum', sellerId: '2', stock: 10, startsAt: instant - 1_000 });
    // Same last two digits of the user id, same instant: an id made of the clock and the user's
    // digits would repeat.
    const early = await engine.reserve({ userId: '101' }, { itemId, quantity: 1 });
    if (!early.ok) throw new Error(`reserve failed: ${early.reason}`);
    await engine.close();

    // The clock stepped back: the restarted engine reads the very same instant again.
    engine = await createEngine({ databaseUrl: database.url, clock: new SimulatedClock(instant) });
    const late = await engine.reserve({ userId: '201' }, { itemId, quantity: 1 });
    if (!late.ok) throw new Error(`reserve failed: ${late.reason}`);
    expect(engine.item(itemId)).toMatchObject({ reserved: 2, available: 8 });
    // Both reservations are open and belong to their own buyers.
    expect(await engine.confirm({ userId: '101' }, early.token)).toMatchObject({ ok: true });
    expect(await engine.confirm({ userId: '201' }, late.token)).toMatchObject({ ok: true });
    expect(engine.item(itemId)).toMatchObject({ reserved: 0, sold: 2 });
    await engine.close();
  });
});
