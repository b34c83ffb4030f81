/**
 * The replay tool: the journal is the truth, and everything else is a projection of it. For
 * every slice of every item this folds the slice's whole journal with the decider's own
 * `evolve` (no snapshot: a snapshot is a projection too), then checks the projections against
 * the fold: the slice's `item_inventory` figures, its latest snapshot, and its orders in the
 * order databases' buyer and seller dimensions (src/orders/orderReplay.ts). With `repair`, it
 * rewrites the figures and writes missing order rows and statuses from the journal.
 *
 * Run it while the engine is stopped: a running engine keeps appending to the journals, and its
 * projector keeps writing orders. An engine that stops cleanly leaves its projection caught up.
 */
import type pg from 'pg';
import { evolve, fromSnapshot, initialState, toSnapshot, type SliceState } from './domain/slice.js';
import { Catalog } from './persistence/catalog.js';
import { readEventPages, readSnapshot } from './persistence/journalReads.js';
import { snapshotBytes } from './persistence/journalRows.js';
import { inTransaction } from './persistence/pools.js';
import type { OrderDatabases } from './orders/orderDatabases.js';
import { checkSliceOrders, countRowsBySlice, type JournaledOrder } from './orders/orderReplay.js';

export interface SliceReport {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
  readonly events: number;
  /** The slice's figures as the journal says they are, and its orders (cancelled ones too). */
  readonly journal: { stock: number; available: number; reserved: number; sold: number; orders: number };
  /** What the projections hold. */
  readonly stored: { stock: number; available: number; reserved: number; sold: number };
  readonly problems: readonly string[];
  readonly repaired: boolean;
}

export interface ReplayReport {
  readonly items: number;
  readonly slices: readonly SliceReport[];
  readonly consistent: boolean;
  /** Units given by one slice of an item and not yet taken by another, per item. */
  readonly inTransfer: Readonly<Record<string, number>>;
}

interface Fold {
  state: SliceState;
  events: number;
  lastSequence: number;
  /** The state right after the event the stored snapshot was taken at, as the snapshot would hold it. */
  atSnapshot: string | null;
  orders: Map<string, JournaledOrder>;
  transfersOut: Map<string, number>;
  /** The first event the fold could not take without breaking the slice's balance. */
  foldError?: string;
  transfersIn: Set<string>;
}

const replayPageSize = 50_000;

/** JSON with object keys sorted, so two documents compare equal whatever order jsonb kept. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([left], [right]) => (left < right ? -1 : 1));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonical(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Folds a slice's whole journal, a page at a time, so a long journal never sits in memory whole. */
async function foldJournal(
  pool: pg.Pool,
  sliceId: string,
  owner: { itemId: string; sellerId: string },
  snapshotSequence: number | null,
): Promise<Fold> {
  const fold: Fold = {
    state: initialState(),
    events: 0,
    lastSequence: 0,
    atSnapshot: null,
    orders: new Map(),
    transfersOut: new Map(),
    transfersIn: new Set(),
  };
  for await (const page of readEventPages(pool, sliceId, 0, replayPageSize)) {
    for (const { sequence, event } of page) {
      try {
        fold.state = evolve(fold.state, event);
      } catch (error) {
        // An oversell in the journal: `seckill replay --verify` reports it at its sequence.
        fold.foldError ??= `sequence ${sequence}: ${(error as Error).message}`;
      }
      fold.events++;
      if (event.kind === 'confirmed' || event.kind === 'purchased') {
        fold.orders.set(event.orderId, {
          orderId: event.orderId,
          userId: event.userId,
          sellerId: owner.sellerId,
          itemId: owner.itemId,
          sliceId,
          quantity: event.quantity,
          createdAt: event.atMs,
          cancelledAt: null,
        });
      }
      if (event.kind === 'order_cancelled') {
        const order = fold.orders.get(event.orderId);
        if (order !== undefined) fold.orders.set(event.orderId, { ...order, cancelledAt: event.atMs });
      }
      if (event.kind === 'transferred_out') fold.transfersOut.set(event.transferId, event.quantity);
      if (event.kind === 'transferred_in') fold.transfersIn.add(event.transferId);
      fold.lastSequence = sequence;
      if (sequence === snapshotSequence) fold.atSnapshot = canonical(toSnapshot(fold.state));
    }
  }
  return fold;
}

export async function replayJournals(
  pools: readonly pg.Pool[],
  orderDatabases: OrderDatabases,
  options: { repair?: boolean } = {},
): Promise<ReplayReport> {
  const catalog = new Catalog(pools);
  const items = await catalog.loadItems();
  const rowCounts = await countRowsBySlice(orderDatabases);
  const slices: SliceReport[] = [];
  const inTransfer: Record<string, number> = {};

  for (const item of items) {
    const given = new Map<string, number>();
    const taken = new Set<string>();
    for (const [sliceIndex, { sliceId, databaseIndex }] of item.slices.entries()) {
      const pool = pools[databaseIndex]!;
      const snapshot = await readSnapshot(pool, sliceId);
      const owner = { itemId: item.definition.id, sellerId: item.definition.sellerId };
      const fold = await foldJournal(pool, sliceId, owner, snapshot === undefined ? null : snapshot.sequence);
      for (const [transferId, quantity] of fold.transfersOut) given.set(transferId, quantity);
      for (const transferId of fold.transfersIn) taken.add(transferId);

      const row = (
        await pool.query<{ stock: string; quantity: string; reserved: string; sold: string }>(
          'SELECT stock, quantity, reserved, sold FROM item_inventory WHERE id = $1',
          [sliceId],
        )
      ).rows[0];

      const { state } = fold;
      const journal = {
        stock: state.stock,
        available: state.available,
        reserved: state.reserved,
        sold: state.sold,
        orders: fold.orders.size,
      };
      const stored = {
        stock: Number(row?.stock ?? 0),
        available: Number(row?.quantity ?? 0),
        reserved: Number(row?.reserved ?? 0),
        sold: Number(row?.sold ?? 0),
      };
      const problems: string[] = [];
      if (fold.foldError !== undefined) problems.push(`journal: out of balance at ${fold.foldError}`);
      if (row === undefined) problems.push('the slice has no item_inventory row');
      for (const figure of ['stock', 'available', 'reserved', 'sold'] as const) {
        if (journal[figure] !== stored[figure]) problems.push(`${figure}: journal ${journal[figure]}, stored ${stored[figure]}`);
      }
      if (snapshot !== undefined) {
        if (snapshot.sequence > fold.lastSequence) problems.push('the snapshot is ahead of the journal');
        // Read back through the decider's own snapshot functions, so a snapshot taken before a
        // field existed compares equal to the fold when it says the same.
        else if (fold.atSnapshot !== canonical(toSnapshot(fromSnapshot(snapshot.snapshot)))) {
          problems.push(`the snapshot at sequence ${snapshot.sequence} disagrees with the journal`);
        }
      }

      let figuresRepaired = false;
      if (options.repair === true && problems.length > 0 && row !== undefined) {
        await inTransaction(pool, async (client) => {
          await client.query(
            'UPDATE item_inventory SET stock = $2, quantity = $3, reserved = $4, sold = $5 WHERE id = $1',
            [sliceId, journal.stock, journal.available, journal.reserved, journal.sold],
          );
          // A snapshot that disagrees with the fold would bring the wrong state back at the next start.
          await client.query('DELETE FROM journal_snapshot WHERE slice_id = $1', [sliceId]);
          await client.query(
            'INSERT INTO journal_snapshot (slice_id, sequence, data, created_at) SELECT $1, max(sequence), $2, $3 FROM journal WHERE slice_id = $1',
            [sliceId, snapshotBytes(toSnapshot(state)), Date.now()],
          );
        });
        figuresRepaired = true;
      }
      const figuresSettled = problems.length === 0 || figuresRepaired;
      // The orders' projection: checked (and repaired) on its own, after the slice's figures.
      const orderCheck = await checkSliceOrders(orderDatabases, sliceId, [...fold.orders.values()], rowCounts, options.repair === true);
      problems.push(...orderCheck.problems);
      const repaired = problems.length > 0 && figuresSettled && (orderCheck.problems.length === 0 || orderCheck.repaired);
      slices.push({ itemId: item.definition.id, sliceIndex, sliceId, databaseIndex, events: fold.events, journal, stored, problems, repaired });
    }
    const pending = [...given].filter(([transferId]) => !taken.has(transferId)).reduce((sum, [, quantity]) => sum + quantity, 0);
    if (pending > 0) inTransfer[item.definition.id] = pending;
  }
  return {
    items: items.length,
    slices,
    consistent: slices.every((slice) => slice.problems.length === 0 || slice.repaired),
    inTransfer,
  };
}
