/**
 * What the engine's store holds after a run, read the way the engine itself reads it on
 * recovery: the catalog's slices, each slice's journal through `BatchingJournal.readEvents`,
 * folded with the decider's `evolve`. Whatever shape the journal takes, recovery must read it
 * back, so this check keeps working when the journal changes. The replay tool then checks the
 * projections (stock rows, order rows, snapshots) against the same journals.
 */
import { systemClock } from '../../src/clock.js';
import { evolve, initialState } from '../../src/domain/slice.js';
import { Catalog } from '../../src/persistence/catalog.js';
import { BatchingJournal } from '../../src/persistence/journal.js';
import { PostgresJournalStore } from '../../src/persistence/postgresJournalStore.js';
import { createPool } from '../../src/persistence/pools.js';
import { replayJournals } from '../../src/replay.js';
import { OrderDatabases, orderDatabasesDefault, tablesPerDatabaseDefault } from '../../src/orders/orderDatabases.js';
import { countMissing, type StoredCheck } from '../harness/result.js';

export interface StoredItem {
  readonly stock: number;
  readonly sold: number;
  readonly orderIds: Set<string>;
}

export interface EngineStore {
  readonly items: ReadonlyMap<string, StoredItem>;
  /** The replay tool's verdict on the projections; its problems, if any. */
  readonly replayConsistent: boolean;
  readonly replayProblems: readonly string[];
}

/** Reads every item's journals. Run it with the engine stopped, as the replay tool requires. */
export async function readEngineStore(databaseUrl: string): Promise<EngineStore> {
  const pool = createPool({ connectionString: databaseUrl, connectionsMax: 2 });
  try {
    const journal = new BatchingJournal(new PostgresJournalStore(pool), { clock: systemClock });
    const items = new Map<string, StoredItem>();
    for (const item of await new Catalog([pool]).loadItems()) {
      const stored: StoredItem = { stock: 0, sold: 0, orderIds: new Set() };
      let stock = 0;
      let sold = 0;
      for (const slice of item.slices) {
        const state = initialState();
        for (const { event } of await journal.readEvents(slice.sliceId, 0)) {
          evolve(state, event);
          if (event.kind === 'purchased' || event.kind === 'confirmed') stored.orderIds.add(event.orderId);
        }
        stock += state.stock;
        sold += state.sold;
      }
      items.set(item.definition.id, { ...stored, stock, sold });
    }
    // The engine's order databases beside a DATABASE_URL: its default schemas in that database.
    const orderDatabases = await OrderDatabases.open(
      Array.from({ length: orderDatabasesDefault }, () => databaseUrl),
      tablesPerDatabaseDefault,
    );
    const replay = await replayJournals([pool], orderDatabases).finally(() => orderDatabases.close());
    return {
      items,
      replayConsistent: replay.consistent,
      replayProblems: replay.slices.flatMap((slice) => slice.problems.map((problem) => `slice ${slice.sliceId}: ${problem}`)),
    };
  } finally {
    await pool.end();
  }
}

/**
 * Acknowledged order ids, per item, against the store. Oversell is counted on the sell-out
 * item, the only one whose stock ran out: units stored as sold beyond its stock.
 */
export function checkEngineStore(
  store: EngineStore,
  acknowledged: ReadonlyMap<string, readonly string[]>,
  sellOutItemId: string,
  method: string,
): StoredCheck {
  let acknowledgedCount = 0;
  let storedCount = 0;
  let lost = 0;
  let oversold = 0;
  for (const item of store.items.values()) {
    storedCount += item.orderIds.size;
    oversold += Math.max(0, item.sold - item.stock);
  }
  for (const [itemId, orderIds] of acknowledged) {
    acknowledgedCount += orderIds.length;
    lost += countMissing(orderIds, store.items.get(itemId)?.orderIds ?? new Set());
  }
  const sellOut = store.items.get(sellOutItemId);
  return {
    method,
    acknowledged: acknowledgedCount,
    stored: storedCount,
    lostAcknowledgements: lost,
    oversold,
    sellOutStock: sellOut?.stock ?? 0,
    sellOutSold: sellOut?.sold ?? 0,
  };
}
