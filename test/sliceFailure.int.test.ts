/**
 * A slice whose journal fails it: what it answers, and when. The flush statements pass through
 * a hook (test/support/faultyPool.ts), so a test decides the moment and the kind of failure.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SliceHost, type Slice } from '../src/actors/sliceActor.js';
import { systemClock } from '../src/clock.js';
import { parseItemDefinition } from '../src/items.js';
import { Catalog } from '../src/persistence/catalog.js';
import { BatchingJournal } from '../src/persistence/journal.js';
import { migrate } from '../src/persistence/migrations.js';
import { createPool } from '../src/persistence/pools.js';
import { deferred, rolledBack, withFlushHook, type FlushHook } from './support/faultyPool.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('slice_failure');
  pool = createPool({ connectionString: database.url, connectionsMax: 4 });
  await migrate(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

async function sliceOfNewItem(itemId: string, stock: number): Promise<string> {
  const parsed = parseItemDefinition({ id: itemId, name: 'Lamp', sellerId: '3', stock, perUserLimit: 5 }, Date.now(), 1);
  if (!parsed.ok) throw new Error(parsed.message);
  const [placement] = await new Catalog([pool]).insertItem(parsed.definition, Date.now());
  return placement!.sliceId;
}

/** A slice on a journal whose next flushes go through `hooks`, one hook per flush. */
async function hookedSlice(itemId: string, stock: number, hooks: FlushHook[]) {
  const sliceId = await sliceOfNewItem(itemId, stock);
  const journal = new BatchingJournal(withFlushHook(pool, () => hooks.shift()), {
    clock: systemClock,
    ownerOf: () => ({ itemId, sellerId: '3' }),
  });
  const host = new SliceHost({ journal, clock: systemClock, onFigures: () => undefined });
  const slice = host.spawn(sliceId);
  await slice.ready;
  const stop = async (): Promise<void> => {
    await host.drain();
    host.stop();
    await journal.release();
  };
  return { slice, journal, host, stop };
}

function buy(slice: Slice, userId: string, orderId: string) {
  return slice.submit({ kind: 'buy', userId, quantity: 1, orderId, nowMs: Date.now() });
}

describe('a flush that fails while a command waits behind it', () => {
  it('answers the waiting command unavailable, never a refusal decided on the state that failed', async () => {
    const started = deferred<void>();
    const gate = deferred<pg.QueryResult>();
    const { slice, stop } = await hookedSlice('51', 1, [
      () => {
        started.resolve();
        return gate.promise;
      },
    ]);
    // Buyer A takes the last unit; its flush is held.
    const first = buy(slice, '1', '5100001');
    await started.promise;
    // Buyer B arrives in the same turn as the failure: decided after it, B must not hear
    // `sold_out` for a unit that is still on sale.
    const second = buy(slice, '2', '5100002');
    gate.reject(rolledBack());
    expect(await first).toEqual({ events: [], rejection: 'unavailable' });
    expect(await second).toEqual({ events: [], rejection: 'unavailable' });
    // Once reloaded, the unit is still there.
    await vi.waitFor(async () => expect((await buy(slice, '2', '5100003')).rejection).toBeNull());
    await stop();
  });
});
