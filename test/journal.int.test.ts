/**
 * The batching journal with a connection that drops on purpose: after PostgreSQL committed a
 * batch but before the answer arrived, and before the batch reached PostgreSQL at all. Buyers
 * must hear the truth either way: their order when it is stored, `unavailable` when it is not.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SliceHost } from '../src/actors/sliceHost.js';
import { systemClock } from '../src/clock.js';
import { parseItemDefinition } from '../src/items.js';
import { Catalog } from '../src/persistence/catalog.js';
import { BatchingJournal } from '../src/persistence/journal.js';
import { PostgresJournalStore } from '../src/persistence/postgresJournalStore.js';
import { migrate } from '../src/persistence/migrations.js';
import { createPool } from '../src/persistence/pools.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('journal');
  pool = createPool({ connectionString: database.url, connectionsMax: 4 });
  await migrate(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

type Drop = 'after_commit' | 'before_sending';

/** The pool, except that the next flushes lose their connection, at the chosen moment. */
function droppingPool(real: pg.Pool, drops: Drop[]): pg.Pool {
  const lost = () => new Error('Connection terminated unexpectedly');
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property !== 'connect') return Reflect.get(target, property, receiver);
      return async (callback?: unknown) => {
        // pg's own `pool.query` connects with a callback: that path is left alone.
        if (typeof callback === 'function') return target.connect(callback as never);
        const client = await target.connect();
        const query = client.query.bind(client) as (...parameters: unknown[]) => Promise<pg.QueryResult>;
        // The client goes back to the shared pool afterwards, so every other query passes through whole.
        (client as unknown as { query: unknown }).query = (...parameters: unknown[]) => {
          const config = parameters[0] as pg.QueryConfig | string;
          const drop = typeof config === 'object' && config.name === 'journal-flush' ? drops.shift() : undefined;
          if (drop === 'before_sending') return Promise.reject(lost());
          if (drop === 'after_commit') return query(config).then(() => Promise.reject(lost()));
          return query(...parameters);
        };
        return client;
      };
    },
  });
}

async function sliceOfNewItem(itemId: string, stock: number): Promise<string> {
  const parsed = parseItemDefinition({ id: itemId, name: 'Lamp', sellerId: '3', stock }, Date.now(), 1);
  if (!parsed.ok) throw new Error(parsed.message);
  const [placement] = await new Catalog([pool]).insertItem(parsed.definition, Date.now());
  return placement!.sliceId;
}

describe('a flush whose connection drops', () => {
  it.each([
    ['after PostgreSQL committed it: the buyers get their orders', 'after_commit' as const, '41'],
    ['before it reached PostgreSQL: the buyers get unavailable, and nothing is stored', 'before_sending' as const, '42'],
  ])('%s', async (_name, drop, itemId) => {
    const sliceId = await sliceOfNewItem(itemId, 100);
    const journal = new BatchingJournal(new PostgresJournalStore(droppingPool(pool, [drop])), { clock: systemClock });
    const host = new SliceHost({ journal, clock: systemClock, onFigures: () => undefined });
    const slice = host.spawn(sliceId);
    await slice.ready;

    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        slice.submit({ kind: 'buy', userId: String(index + 1), quantity: 1, orderId: `${itemId}00${index + 10}`, nowMs: Date.now() }),
      ),
    );
    const ordered = outcomes.filter((outcome) => outcome.rejection === null).length;
    const stored = await storedOrderIds(pool, itemId);
    if (drop === 'after_commit') {
      expect(ordered).toBe(20);
      expect(stored).toHaveLength(20);
    } else {
      expect(outcomes.every((outcome) => outcome.rejection === 'unavailable')).toBe(true);
      expect(stored).toHaveLength(0);
    }
    // Either way what buyers were told is what is stored, and the slice serves on from there.
    expect(await storedFigures(pool, itemId)).toMatchObject({ sold: ordered, available: 100 - ordered });
    let next;
    for (let attempt = 0; attempt < 100; attempt++) {
      next = await slice.submit({ kind: 'buy', userId: '999', quantity: 1, orderId: `${itemId}009999`, nowMs: Date.now() });
      if (next.rejection !== 'unavailable') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(next?.rejection).toBeNull();
    expect(slice.figures).toMatchObject({ sold: ordered + 1, available: 99 - ordered });
    await host.drain();
    host.stop();
    await journal.release();
  });
});
