/**
 * The replay tool: the journal is the truth, and everything else is a projection of it. For
 * every slice of every item this folds the slice's whole journal with the decider's own
 * `evolve` (no snapshot: a snapshot is a projection too), then checks the projections against
 * the fold: the slice's `item_inventory` figures, its latest snapshot, and the order rows. With
 * `repair`, it rewrites the figures and inserts missing order rows from the journal.
 *
 * Run it while the engine is stopped: a running engine keeps appending to the journals.
 */
import type pg from 'pg';
import { evolve, initialState, toSnapshot, type SliceState } from './domain/slice.js';
import { Catalog } from './persistence/catalog.js';
import { eventFromRow, type JournalRow } from './persistence/journalRows.js';
import { inTransaction } from './persistence/pools.js';

export interface SliceReport {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
  readonly events: number;
  /** The slice's figures as the journal says they are. */
  readonly journal: { stock: number; available: number; reserved: number; sold: number; orders: number };
  /** What the projections hold. */
  readonly stored: { stock: number; available: number; reserved: number; sold: number; orders: number };
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
  orderIds: Set<string>;
  transfersOut: Map<string, number>;
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
async function foldJournal(pool: pg.Pool, sliceId: string, snapshotSequence: number | null): Promise<Fold> {
  const fold: Fold = {
    state: initialState(),
    events: 0,
    lastSequence: 0,
    atSnapshot: null,
    orderIds: new Set(),
    transfersOut: new Map(),
    transfersIn: new Set(),
  };
  let after = 0;
  for (;;) {
    const page = await pool.query<JournalRow>(
      `SELECT sequence, kind, user_id, quantity, reservation_id, order_id, expires_at, at_ms, detail
         FROM journal WHERE slice_id = $1 AND sequence > $2 ORDER BY sequence LIMIT ${replayPageSize}`,
      [sliceId, after],
    );
    for (const row of page.rows) {
      const event = eventFromRow(row);
      fold.state = evolve(fold.state, event);
      fold.events++;
      if (event.kind === 'confirmed' || event.kind === 'purchased') fold.orderIds.add(event.orderId);
      if (event.kind === 'transferred_out') fold.transfersOut.set(event.transferId, event.quantity);
      if (event.kind === 'transferred_in') fold.transfersIn.add(event.transferId);
      after = Number(row.sequence);
      fold.lastSequence = after;
      if (after === snapshotSequence) fold.atSnapshot = canonical(toSnapshot(fold.state));
    }
    if (page.rows.length < replayPageSize) return fold;
  }
}

export async function replayJournals(pools: readonly pg.Pool[], options: { repair?: boolean } = {}): Promise<ReplayReport> {
  const catalog = new Catalog(pools);
  const items = await catalog.loadItems();
  const slices: SliceReport[] = [];
  const inTransfer: Record<string, number> = {};

  for (const item of items) {
    const given = new Map<string, number>();
    const taken = new Set<string>();
    for (const [sliceIndex, { sliceId, databaseIndex }] of item.slices.entries()) {
      const pool = pools[databaseIndex]!;
      const snapshot = await pool.query<{ sequence: string; data: unknown }>(
        'SELECT sequence, data FROM journal_snapshot WHERE slice_id = $1',
        [sliceId],
      );
      const snapshotRow = snapshot.rows[0];
      const fold = await foldJournal(pool, sliceId, snapshotRow === undefined ? null : Number(snapshotRow.sequence));
      for (const [transferId, quantity] of fold.transfersOut) given.set(transferId, quantity);
      for (const transferId of fold.transfersIn) taken.add(transferId);

      const row = (
        await pool.query<{ stock: string; quantity: string; reserved: string; sold: string }>(
          'SELECT stock, quantity, reserved, sold FROM item_inventory WHERE id = $1',
          [sliceId],
        )
      ).rows[0];
      const storedOrders = await pool.query<{ order_id: string }>('SELECT order_id FROM order_order WHERE slice_id = $1', [sliceId]);
      const storedOrderIds = new Set(storedOrders.rows.map((order) => order.order_id));

      const { state } = fold;
      const journal = {
        stock: state.stock,
        available: state.available,
        reserved: state.reserved,
        sold: state.sold,
        orders: fold.orderIds.size,
      };
      const stored = {
        stock: Number(row?.stock ?? 0),
        available: Number(row?.quantity ?? 0),
        reserved: Number(row?.reserved ?? 0),
        sold: Number(row?.sold ?? 0),
        orders: storedOrderIds.size,
      };
      const problems: string[] = [];
      if (row === undefined) problems.push('the slice has no item_inventory row');
      for (const figure of ['stock', 'available', 'reserved', 'sold'] as const) {
        if (journal[figure] !== stored[figure]) problems.push(`${figure}: journal ${journal[figure]}, stored ${stored[figure]}`);
      }
      const missingOrders = [...fold.orderIds].filter((orderId) => !storedOrderIds.has(orderId));
      const strayOrders = [...storedOrderIds].filter((orderId) => !fold.orderIds.has(orderId));
      if (missingOrders.length > 0) problems.push(`${missingOrders.length} journaled orders have no order row`);
      if (strayOrders.length > 0) problems.push(`${strayOrders.length} order rows have no journaled order`);
      if (snapshotRow !== undefined) {
        if (Number(snapshotRow.sequence) > fold.lastSequence) problems.push('the snapshot is ahead of the journal');
        else if (fold.atSnapshot !== canonical(snapshotRow.data)) {
          problems.push(`the snapshot at sequence ${snapshotRow.sequence} disagrees with the journal`);
        }
      }

      let repaired = false;
      if (options.repair === true && problems.length > 0 && row !== undefined && strayOrders.length === 0) {
        await inTransaction(pool, async (client) => {
          await client.query(
            'UPDATE item_inventory SET stock = $2, quantity = $3, reserved = $4, sold = $5 WHERE id = $1',
            [sliceId, journal.stock, journal.available, journal.reserved, journal.sold],
          );
          // Missing order rows are rebuilt from their journal events.
          await client.query(
            `INSERT INTO order_order (id, user_id, order_id, create_time, item_id, status, modify_time, buy_quantity, seller_id, slice_id)
             SELECT order_id, user_id, order_id, at_ms, $2, 1, at_ms, quantity, $3, slice_id
               FROM journal WHERE slice_id = $1 AND kind IN ('confirmed', 'purchased')
             ON CONFLICT (id) DO NOTHING`,
            [sliceId, item.definition.id, item.definition.sellerId],
          );
          // A snapshot that disagrees with the fold would bring the wrong state back at the next start.
          await client.query('DELETE FROM journal_snapshot WHERE slice_id = $1', [sliceId]);
          await client.query(
            'INSERT INTO journal_snapshot (slice_id, sequence, data, created_at) SELECT $1, max(sequence), $2, $3 FROM journal WHERE slice_id = $1',
            [sliceId, JSON.stringify(toSnapshot(state)), Date.now()],
          );
        });
        repaired = true;
      }
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
