/**
 * The engine against a real PostgreSQL: concurrency, limits, TTLs, restarts and flush
 * failures. Each test creates its own item, so the tests of this file share one database.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { createPool } from '../src/persistence/pools.js';
import { createEngine, type Engine } from '../src/engine.js';
import { SimulatedClock } from '../src/clock.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';
import { judge } from './support/replayJudge.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { tally } from './support/tally.js';
import { commitWait } from './support/waits.js';

let database: TestDatabase;
let admin: pg.Pool;
let nextItemId = 1000;

function newItemId(): string {
  return String(nextItemId++);
}

beforeAll(async () => {
  database = await createTestDatabase('engine');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

describe('a flash sale on one item', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createEngine({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await engine.close();
  });

  it('sells exactly the stock to 10,000 concurrent buyers', async () => {
    const itemId = newItemId();
    const created = await engine.createItem({ id: itemId, name: 'Phone', sellerId: '7', stock: 1_000 });
    expect(created.ok).toBe(true);

    const results = await Promise.all(
      Array.from({ length: 10_000 }, (_, index) =>
        engine.buy({ userId: String(100_000 + index) }, { itemId, quantity: 1 }),
      ),
    );

    expect(tally(results, 'ok')).toEqual({ ok: 1_000, sold_out: 9_000 });
    const orderIds = results.flatMap((result) => (result.ok ? [result.orderId] : []));
    expect(new Set(orderIds).size).toBe(1_000);
    expect(engine.item(itemId)).toMatchObject({ stock: 1_000, available: 0, reserved: 0, sold: 1_000, status: 'sold_out' });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 1_000, available: 0, reserved: 0, sold: 1_000 });
    expect((await storedOrderIds(admin, itemId)).sort()).toEqual([...orderIds].sort());
  });

  it('holds the per-user limit against concurrent calls from one user', async () => {
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Watch', sellerId: '7', stock: 100, perUserLimit: 3 });
    const buyer = { userId: '555' };

    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => engine.buy(buyer, { itemId, quantity: 1 })),
      ...Array.from({ length: 50 }, () => engine.reserve(buyer, { itemId, quantity: 1 })),
    ]);

    expect(tally(results, 'ok')).toEqual({ ok: 3, limit_exceeded: 97 });
    const view = engine.item(itemId)!;
    expect(view.reserved + view.sold).toBe(3);
    expect(await engine.buy(buyer, { itemId, quantity: 1 })).toMatchObject({ ok: false, reason: 'limit_exceeded' });
  });

  it('refuses forged, foreign and reused tokens', async () => {
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Pen', sellerId: '7', stock: 10 });
    const reservation = await engine.reserve({ userId: '1' }, { itemId, quantity: 1 });
    if (!reservation.ok) throw new Error(`reserve failed: ${reservation.reason}`);

    const [body, signature] = reservation.token.split('.') as [string, string];
    const forged = `${Buffer.from(Buffer.from(body, 'base64url').toString().replace(/\.1\./, '.2.')).toString('base64url')}.${signature}`;
    expect(await engine.confirm({ userId: '2' }, forged)).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await engine.confirm({ userId: '1' }, `${body}.${'A'.repeat(43)}`)).toMatchObject({ reason: 'token_invalid' });
    expect(await engine.confirm({ userId: '2' }, reservation.token)).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await engine.confirm({ userId: '1' }, 'garbage')).toMatchObject({ ok: false, reason: 'token_invalid' });

    const order = await engine.confirm({ userId: '1' }, reservation.token);
    expect(order).toMatchObject({ ok: true, itemId, quantity: 1 });
    expect(await engine.confirm({ userId: '1' }, reservation.token)).toMatchObject({ ok: false, reason: 'token_used' });
    expect(await engine.cancel({ userId: '1' }, reservation.token)).toMatchObject({ ok: false, reason: 'token_used' });
    expect((await engine.orders('1')).map((view) => view.orderId)).toContain((order as { orderId: string }).orderId);
  });

  it('answers the sale window and unknown items', async () => {
    const itemId = newItemId();
    const now = Date.now();
    await engine.createItem({ id: itemId, name: 'Later', sellerId: '7', stock: 5, startsAt: now + 3_600_000 });
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ reason: 'not_started' });
    expect(engine.item(itemId)!.status).toBe('not_started');

    const ended = newItemId();
    await engine.createItem({ id: ended, name: 'Over', sellerId: '7', stock: 5, startsAt: now - 2_000, endsAt: now - 1_000 });
    expect(await engine.reserve({ userId: '1' }, { itemId: ended, quantity: 1 })).toMatchObject({ reason: 'ended' });
    expect(await engine.buy({ userId: '1' }, { itemId: '999999999', quantity: 1 })).toMatchObject({ reason: 'unknown_item' });
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 0 })).toMatchObject({ reason: 'invalid' });
  });

  it('tells from memory, without a promise, the refusals buy and reserve answer, and nothing else', async () => {
    const now = Date.now();
    const later = newItemId();
    await engine.createItem({ id: later, name: 'Later', sellerId: '7', stock: 5, startsAt: now + 3_600_000 });
    const gold = newItemId();
    await engine.createItem({ id: gold, name: 'Gold', sellerId: '7', stock: 5, eligibility: { minLevel: 3 } });
    const one = newItemId();
    await engine.createItem({ id: one, name: 'One', sellerId: '7', stock: 1 });
    expect(await engine.buy({ userId: '50' }, { itemId: one, quantity: 1 })).toMatchObject({ ok: true });
    const cases = [
      [{ userId: '51' }, { itemId: later, quantity: 1 }, 'not_started'],
      [{ userId: '51', level: 1 }, { itemId: gold, quantity: 1 }, 'not_eligible'],
      [{ userId: '51' }, { itemId: one, quantity: 1 }, 'sold_out'],
      [{ userId: '51' }, { itemId: '999999999', quantity: 1 }, 'unknown_item'],
      [{ userId: '51' }, { itemId: one, quantity: 0 }, 'invalid'],
    ] as const;
    for (const [buyer, request, reason] of cases) {
      const refusal = engine.refusalFromMemory(buyer, request);
      expect(refusal).toMatchObject({ ok: false, reason });
      expect(await engine.buy(buyer, request)).toEqual(refusal);
      expect(await engine.reserve(buyer, request)).toEqual(refusal);
    }
    // An item on sale goes on to the slice. On a sold-out item, a keyed request goes on only if
    // its slice holds a request under the key (test/idempotency.int.test.ts); a new key is refused.
    expect(engine.refusalFromMemory({ userId: '52', level: 5 }, { itemId: gold, quantity: 1 })).toBeNull();
    expect(engine.refusalFromMemory({ userId: '50' }, { itemId: one, quantity: 1, idempotencyKey: 'k' })).toMatchObject({ reason: 'sold_out' });
    expect(engine.item(one)).toMatchObject({ sold: 1, available: 0 });
  });

  it('refuses an invalid or duplicate item and changes nothing', async () => {
    const itemId = newItemId();
    expect(await engine.createItem({ id: itemId, name: 'Bad', sellerId: '7', stock: -1 })).toMatchObject({
      ok: false,
      error: 'invalid',
    });
    expect(engine.item(itemId)).toBeUndefined();
    expect(await engine.createItem({ id: itemId, name: 'Good', sellerId: '7', stock: 1 })).toMatchObject({ ok: true });
    expect(await engine.createItem({ id: itemId, name: 'Again', sellerId: '7', stock: 9 })).toMatchObject({
      ok: false,
      error: 'conflict',
    });
    expect(engine.item(itemId)!.stock).toBe(1);
  });

  it('restocks a sold-out item back on sale', async () => {
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Cup', sellerId: '7', stock: 1 });
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    expect(engine.item(itemId)!.status).toBe('sold_out');
    const restocked = await engine.restock(itemId, 4);
    expect(restocked).toMatchObject({ ok: true, value: { stock: 5, available: 4, sold: 1, status: 'on_sale' } });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 5, available: 4, reserved: 0, sold: 1 });
    expect(await engine.restock(itemId, 0)).toMatchObject({ ok: false, error: 'invalid' });
  });
});

describe('reservations over time (simulated clock)', () => {
  it('puts stock back on cancel and on expiry, and across a restart', async () => {
    const clock = new SimulatedClock(Date.now());
    let engine = await createEngine({ databaseUrl: database.url, clock });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Bag', sellerId: '7', stock: 2, reserveTtlMs: 10_000, perUserLimit: 2 });

    const first = await engine.reserve({ userId: '1' }, { itemId, quantity: 1 });
    const second = await engine.reserve({ userId: '2' }, { itemId, quantity: 1 });
    if (!first.ok || !second.ok) throw new Error('reserve failed');
    expect(engine.item(itemId)).toMatchObject({ available: 0, reserved: 2, status: 'sold_out' });
    expect(await engine.reserve({ userId: '3' }, { itemId, quantity: 1 })).toMatchObject({ reason: 'sold_out' });

    // Cancel: the unit is back on sale at once.
    expect(await engine.cancel({ userId: '1' }, first.token)).toEqual({ ok: true, itemId, quantity: 1 });
    expect(engine.item(itemId)).toMatchObject({ available: 1, reserved: 1 });

    // Expiry: the sweep runs when the TTL passes, without anyone asking.
    clock.advance(10_000);
    await vi.waitFor(() => expect(engine.item(itemId)).toMatchObject({ available: 2, reserved: 0 }), commitWait);
    expect(await engine.confirm({ userId: '2' }, second.token)).toMatchObject({ reason: 'token_expired' });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 2, available: 2, reserved: 0, sold: 0 });

    // A reservation whose TTL passes while the engine is down expires at the next start.
    const third = await engine.reserve({ userId: '3' }, { itemId, quantity: 2 });
    expect(third.ok).toBe(true);
    await engine.close();
    clock.advance(60_000);
    engine = await createEngine({ databaseUrl: database.url, clock });
    await vi.waitFor(() => expect(engine.item(itemId)).toMatchObject({ available: 2, reserved: 0 }), commitWait);
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 2, available: 2, reserved: 0, sold: 0 });
    await engine.close();
  });
});

describe('engine.idle()', () => {
  it('settles once every due expiry has committed and been answered, across slices, with no polling', async () => {
    const clock = new SimulatedClock(Date.now());
    const engine = await createEngine({ databaseUrl: database.url, clock });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Cap', sellerId: '7', stock: 40, reserveTtlMs: 5_000, slices: 4 });
    const reservations = await Promise.all(
      Array.from({ length: 40 }, (_, index) => engine.reserve({ userId: String(7_000 + index) }, { itemId, quantity: 1 })),
    );
    expect(reservations.filter((reservation) => reservation.ok)).toHaveLength(40);
    expect(engine.item(itemId)).toMatchObject({ available: 0, reserved: 40 });

    clock.advance(5_000);
    // Right after advance() the expiries are due and decided but not yet committed.
    await engine.idle();
    expect(engine.item(itemId)).toMatchObject({ available: 40, reserved: 0, status: 'on_sale' });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 40, available: 40, reserved: 0, sold: 0 });
    // Quiet already: a second call settles at once and changes nothing.
    await engine.idle();
    expect(engine.item(itemId)).toMatchObject({ available: 40, reserved: 0 });
    await engine.close();
  });
});

describe('restarts', () => {
  it('restores every figure, open reservation and limit after close and reopen', async () => {
    let engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 50 });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Lamp', sellerId: '9', stock: 500, perUserLimit: 2 });
    const bought = await Promise.all(
      Array.from({ length: 300 }, (_, index) => engine.buy({ userId: String(1 + index) }, { itemId, quantity: 1 })),
    );
    expect(tally(bought, 'ok')).toEqual({ ok: 300 });
    const reservation = await engine.reserve({ userId: '1' }, { itemId, quantity: 1 });
    if (!reservation.ok) throw new Error('reserve failed');
    const before = engine.item(itemId);
    await engine.close();

    const snapshots = await admin.query(
      `SELECT count(*)::int AS count FROM journal_snapshot WHERE slice_id IN (SELECT id FROM item_inventory WHERE item_id = $1)`,
      [itemId],
    );
    expect(snapshots.rows[0].count).toBe(1);

    engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 50 });
    expect(engine.item(itemId)).toEqual(before);
    // User 1 holds one bought and one reserved unit: the limit of 2 still counts both.
    expect(await engine.buy({ userId: '1' }, { itemId, quantity: 1 })).toMatchObject({ reason: 'limit_exceeded' });
    // The token issued before the restart still confirms once.
    expect(await engine.confirm({ userId: '1' }, reservation.token)).toMatchObject({ ok: true });
    expect(await engine.confirm({ userId: '1' }, reservation.token)).toMatchObject({ reason: 'token_used' });
    expect(engine.item(itemId)).toMatchObject({ stock: 500, available: 199, reserved: 0, sold: 301 });
    // The seller's view may lag behind by the projection lag; once it has caught up it holds every order.
    expect(await engine.orderService.whenProjected()).toBe(true);
    expect((await engine.sellerOrders('9')).length).toBe(301);
    await engine.close();
  });
});

describe('snapshots', () => {
  it('are spaced by the size of the state, so a slice with many buyers does not snapshot on every few events', async () => {
    const engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 10 });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Tray', sellerId: '7', stock: 1_000 });
    const snapshotSequence = async (): Promise<number | null> => {
      const result = await admin.query(
        `SELECT sequence FROM journal_snapshot WHERE slice_id IN (SELECT id FROM item_inventory WHERE item_id = $1)`,
        [itemId],
      );
      return result.rows[0] === undefined ? null : Number(result.rows[0].sequence);
    };
    const wave = (first: number, count: number) =>
      Promise.all(Array.from({ length: count }, (_, index) => engine.buy({ userId: String(first + index) }, { itemId, quantity: 1 })));

    await wave(1, 100);
    // 100 events since the definition, and a state of 100 buyers: due, and taken.
    await vi.waitFor(async () => expect(await snapshotSequence()).toBe(101), commitWait);
    await wave(1_001, 50);
    // 50 events against a state of 150 buyers: not due yet, although far more than 10.
    expect(await snapshotSequence()).toBe(101);
    await wave(2_001, 100);
    await vi.waitFor(async () => expect(await snapshotSequence()).toBe(251), commitWait);
    await engine.close();
  });

  it('stored as jsonb by a version before sql/007_snapshot_bytes.sql, load after the migration turned them into bytes', async () => {
    let engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 10 });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Jug', sellerId: '7', stock: 1_000, perUserLimit: 1 });
    await Promise.all(Array.from({ length: 100 }, (_, index) => engine.buy({ userId: String(5_000 + index) }, { itemId, quantity: 1 })));
    const ofItem = 'slice_id IN (SELECT id FROM item_inventory WHERE item_id = $1)';
    await vi.waitFor(async () => {
      expect((await admin.query(`SELECT sequence FROM journal_snapshot WHERE ${ofItem}`, [itemId])).rows[0]?.sequence).toBe('101');
    }, commitWait);
    const before = engine.item(itemId);
    await engine.close();

    // The data directory as the version before the migration left it.
    await admin.query(`ALTER TABLE journal_snapshot ALTER COLUMN data TYPE jsonb USING convert_from(data, 'UTF8')::jsonb`);
    await admin.query(`DELETE FROM schema_migration WHERE name = '007_snapshot_bytes.sql'`);
    expect((await admin.query(`SELECT data->>'sold' AS sold FROM journal_snapshot WHERE ${ofItem}`, [itemId])).rows[0].sold).toBe('100');

    engine = await createEngine({ databaseUrl: database.url, snapshotEvery: 10 });
    const stored = await admin.query(
      `SELECT pg_typeof(data)::text AS type, convert_from(data, 'UTF8')::jsonb->>'sold' AS sold FROM journal_snapshot WHERE ${ofItem}`,
      [itemId],
    );
    expect(stored.rows[0]).toEqual({ type: 'bytea', sold: '100' });
    expect(engine.item(itemId)).toEqual(before);
    expect(await engine.buy({ userId: '5000' }, { itemId, quantity: 1 })).toMatchObject({ reason: 'limit_exceeded' });
    expect(await engine.buy({ userId: '4999' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    await engine.close();
  });
});

describe('a flush that fails', () => {
  it('answers unavailable to everything in and behind it, and the slice returns to what is committed', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Fan', sellerId: '7', stock: 1_000 });
    const early = await Promise.all(
      Array.from({ length: 100 }, (_, index) => engine.buy({ userId: String(10 + index) }, { itemId, quantity: 1 })),
    );
    expect(tally(early, 'ok')).toEqual({ ok: 100 });

    // Break the journal on purpose: every insert fails until the trigger is dropped.
    await admin.query(`
      CREATE FUNCTION refuse_journal() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'journal refused on purpose'; END $$;
      CREATE TRIGGER refuse_journal BEFORE INSERT ON journal_batch FOR EACH STATEMENT EXECUTE FUNCTION refuse_journal();`);
    const failed = await Promise.all([
      ...Array.from({ length: 500 }, (_, index) => engine.buy({ userId: String(1_000 + index) }, { itemId, quantity: 1 })),
      // Decided behind the first buy of user 1000, this one would be `limit_exceeded`; but that
      // buy never commits, so the refusal would rest on state that never was.
      engine.buy({ userId: '1000' }, { itemId, quantity: 1 }),
    ]);
    expect(tally(failed, 'ok')).toEqual({ unavailable: 501 });
    // Nothing that failed shows: the figures are the committed ones.
    expect(engine.item(itemId)).toMatchObject({ available: 900, sold: 100 });

    await admin.query('DROP TRIGGER refuse_journal ON journal_batch; DROP FUNCTION refuse_journal();');
    // The slice reloads what is committed and serves again; the same buyers now succeed.
    await vi.waitFor(async () => {
      expect(await engine.buy({ userId: '1000' }, { itemId, quantity: 1 })).toMatchObject({ ok: true });
    }, { timeout: 15_000, interval: 100 });
    const later = await Promise.all(
      Array.from({ length: 499 }, (_, index) => engine.buy({ userId: String(1_001 + index) }, { itemId, quantity: 1 })),
    );
    expect(tally(later, 'ok')).toEqual({ ok: 499 });
    expect(engine.item(itemId)).toMatchObject({ available: 400, reserved: 0, sold: 600 });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 1_000, available: 400, reserved: 0, sold: 600 });
    expect((await storedOrderIds(admin, itemId)).length).toBe(600);
    await engine.close();
    // The fault suite's judge: a batch that failed half way left nothing of itself behind.
    const verdict = await judge(database.url);
    expect(verdict.violations).toEqual([]);
    expect(verdict.code).toBe(0);
  });
});

describe('a block', () => {
  it('stops a reservation already made from becoming an order, and still lets its holder give the stock back', async () => {
    const engine = await createEngine({ databaseUrl: database.url });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Vase', sellerId: '7', stock: 5, perUserLimit: 2 });
    const buyer = { userId: '4242' };
    const first = await engine.reserve(buyer, { itemId, quantity: 1 });
    const second = await engine.reserve(buyer, { itemId, quantity: 1 });
    if (!first.ok || !second.ok) throw new Error('reserve failed');

    await engine.block(buyer.userId);
    expect(await engine.confirm(buyer, first.token)).toMatchObject({ ok: false, reason: 'blocked' });
    expect(await engine.buy(buyer, { itemId, quantity: 1 })).toMatchObject({ ok: false, reason: 'blocked' });
    // Giving the stock back only helps the other buyers.
    expect(await engine.cancel(buyer, first.token)).toMatchObject({ ok: true, quantity: 1 });
    expect(engine.item(itemId)).toMatchObject({ available: 4, reserved: 1, sold: 0 });

    // Lifted, the reservation still open confirms.
    await engine.unblock(buyer.userId);
    expect(await engine.confirm(buyer, second.token)).toMatchObject({ ok: true });
    await engine.close();
  });
});

describe('idle', () => {
  it('resolves once the due expiries have run and their flush has committed and been answered', async () => {
    const clock = new SimulatedClock(Date.now());
    const engine = await createEngine({ databaseUrl: database.url, clock });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Torch', sellerId: '7', stock: 3, reserveTtlMs: 5_000, perUserLimit: 3 });
    const pending = Array.from({ length: 3 }, (_, index) => engine.reserve({ userId: String(60 + index) }, { itemId, quantity: 1 }));
    let answered = 0;
    for (const reservation of pending) void reservation.then(() => answered++);
    await engine.idle();
    expect(answered).toBe(3);
    expect(engine.item(itemId)).toMatchObject({ available: 0, reserved: 3 });

    clock.advance(5_000);
    await engine.idle();
    // No polling: the sweep ran, committed, and the figures and the stored rows say so.
    expect(engine.item(itemId)).toMatchObject({ available: 3, reserved: 0 });
    expect(await storedFigures(admin, itemId)).toEqual({ stock: 3, available: 3, reserved: 0, sold: 0 });
    await engine.close();
  });

  it('waits for the shard workers too', async () => {
    const engine = await createEngine({ databaseUrl: database.url, shards: 1 });
    const itemId = newItemId();
    await engine.createItem({ id: itemId, name: 'Rope', sellerId: '7', stock: 100, slices: 2 });
    let answered = 0;
    for (let index = 0; index < 50; index++) void engine.buy({ userId: String(700 + index) }, { itemId, quantity: 1 }).then(() => answered++);
    await engine.idle();
    expect(answered).toBe(50);
    expect(engine.journalBacklog).toBe(0);
    expect(await storedFigures(admin, itemId)).toMatchObject({ sold: 50 });
    await engine.close();
  });
});
