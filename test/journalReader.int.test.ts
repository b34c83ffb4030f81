/**
 * The projector's reads of the journal, against a real PostgreSQL: a read over many slices stays
 * within its bound over all of them, each slice's events in it follow on from its position, and
 * reads that move the positions on take in every committed event exactly once.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine.js';
import { readCommittedEvents, readJournalHeads, type CommittedEvent } from '../src/orders/journalReader.js';
import { createPool } from '../src/persistence/pools.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let engine: Engine;
let pool: pg.Pool;

/** Buyers per item per round: each round's orders commit before the next, one batch row per slice each. */
const buyersPerRound: Record<string, number> = { '1': 30, '2': 7, '3': 1, '4': 12 };
const rounds = 5;

beforeAll(async () => {
  database = await createTestDatabase('journal_reader');
  engine = await createEngine({ databaseUrl: database.url });
  for (const itemId of Object.keys(buyersPerRound)) {
    const created = await engine.createItem({ id: itemId, name: `Item ${itemId}`, sellerId: '5', stock: 1_000 });
    expect(created.ok).toBe(true);
  }
  let userId = 1_000;
  for (let round = 0; round < rounds; round++) {
    const buys = Object.entries(buyersPerRound).flatMap(([itemId, count]) =>
      Array.from({ length: count }, () => engine.buy({ userId: String(userId++) }, { itemId, quantity: 1 })),
    );
    expect((await Promise.all(buys)).every((result) => result.ok)).toBe(true);
  }
  await engine.idle();
  pool = createPool({ connectionString: database.url, connectionsMax: 2 });
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await engine?.close();
  await database?.drop();
});

const key = (sliceId: string, sequence: number): string => `${sliceId}#${sequence}`;

describe('readCommittedEvents', () => {
  it.each([5, 20, 64, 10_000])('reads everything committed exactly once, at most %i events a read over all slices (a larger row alone)', async (eventsMax) => {
    const stored = await pool.query<{ slice_id: string; sequence: string; events: number }>(
      'SELECT slice_id, last_sequence AS sequence, events FROM seckill.journal_batch ORDER BY slice_id, first_sequence',
    );
    const sliceIds = [...new Set(stored.rows.map((row) => row.slice_id))];
    expect(sliceIds).toHaveLength(Object.keys(buyersPerRound).length);
    const largestRow = Math.max(...stored.rows.map((row) => row.events));
    const heads = await readJournalHeads(pool, sliceIds);
    const expected = (await pool.query<{ slice_id: string; sequence: string }>('SELECT slice_id, sequence FROM seckill.journal ORDER BY slice_id, sequence')).rows.map(
      (row) => key(row.slice_id, Number(row.sequence)),
    );

    const positions = new Map(sliceIds.map((sliceId) => [sliceId, 0]));
    const seen: string[] = [];
    let reads = 0;
    for (;;) {
      const behind = sliceIds.filter((sliceId) => positions.get(sliceId)! < heads.get(sliceId)!);
      if (behind.length === 0) break;
      const events: CommittedEvent[] = await readCommittedEvents(
        pool,
        behind.map((sliceId) => ({ sliceId, afterSequence: positions.get(sliceId)! })),
        eventsMax,
      );
      reads++;
      expect(events.length).toBeGreaterThan(0);
      if (events.length > eventsMax) {
        // Only a batch row larger than the bound is read on its own.
        expect(new Set(events.map((event) => event.sliceId)).size).toBe(1);
        expect(events.length).toBeLessThanOrEqual(largestRow);
      }
      for (const event of events) {
        // Each slice's events follow on from its position, with no gap.
        expect(event.sequence).toBe(positions.get(event.sliceId)! + 1);
        positions.set(event.sliceId, event.sequence);
        seen.push(key(event.sliceId, event.sequence));
      }
      expect(reads).toBeLessThan(1_000);
    }
    expect([...seen].sort()).toEqual([...expected].sort());
    expect(new Set(seen).size).toBe(seen.length);
    if (eventsMax >= expected.length) expect(reads).toBe(1);
  });
});
