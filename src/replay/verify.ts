/**
 * The fold of every journal of a source, and the verification of every invariant the engine
 * promises: per slice after every event (fold.ts), per item across its slices, and, for the
 * databases, the stored projections (stock rows, snapshots, the buyer and seller order tables)
 * against the fold (src/replay.ts).
 */
import type pg from 'pg';
import type { StoredItem } from '../persistence/catalog.js';
import type { OrderDatabases } from '../orders/orderDatabases.js';
import { replayJournals } from '../replay.js';
import { checkItem, foldPage, newFold, type ItemTotals, type SliceFold, type Until, type Violation } from './fold.js';
import type { JournalSource } from './sources.js';

export interface SliceSummary {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
  readonly events: number;
  readonly lastSequence: number;
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly transfersOut: number;
  readonly transfersIn: number;
  readonly openReservations: number;
  readonly expiredReservations: number;
  readonly cancelledReservations: number;
  readonly cancelledOrders: number;
}

export interface ReplayOutcome {
  readonly source: string;
  readonly until: Until;
  readonly items: number;
  readonly events: number;
  readonly seconds: number;
  readonly slices: readonly SliceSummary[];
  readonly itemTotals: readonly ItemTotals[];
  readonly violations: readonly Violation[];
}

export async function foldSource(source: JournalSource, until: Until, onProgress: (events: number) => void): Promise<ReplayOutcome> {
  const started = performance.now();
  const items = await source.items();
  const folds = new Map<string, SliceFold>();
  const stopped = new Set<string>();
  let events = 0;
  for await (const { slice, events: page } of source.pages()) {
    if (stopped.has(slice.sliceId)) continue;
    let fold = folds.get(slice.sliceId);
    if (fold === undefined) {
      fold = newFold(slice);
      folds.set(slice.sliceId, fold);
    }
    if (!foldPage(fold, page, until)) stopped.add(slice.sliceId);
    events += page.length;
    onProgress(events);
  }
  const violations: Violation[] = [];
  const itemTotals: ItemTotals[] = [];
  for (const item of items) {
    const itemFolds = item.slices.map(({ sliceId }) => folds.get(sliceId)).filter((fold): fold is SliceFold => fold !== undefined);
    for (const fold of itemFolds) violations.push(...fold.violations);
    if (itemFolds.length < item.slices.length) {
      violations.push({ itemId: item.definition.id, sliceIndex: null, sequence: null, invariant: 'every slice journaled', expected: `${item.slices.length} slices with events`, found: `${itemFolds.length}` });
    }
    const checked = checkItem(item.definition.id, itemFolds);
    violations.push(...checked.violations);
    itemTotals.push(checked.totals);
  }
  return {
    source: source.description,
    until,
    items: items.length,
    events,
    seconds: (performance.now() - started) / 1_000,
    slices: [...folds.values()].map(summaryOf),
    itemTotals,
    violations,
  };
}

function summaryOf(fold: SliceFold): SliceSummary {
  const { state } = fold;
  return {
    itemId: fold.itemId,
    sliceIndex: fold.sliceIndex,
    sliceId: fold.sliceId,
    databaseIndex: fold.databaseIndex,
    events: fold.events,
    lastSequence: fold.lastSequence,
    stock: state.stock,
    available: state.available,
    reserved: state.reserved,
    sold: state.sold,
    transfersOut: fold.transfersOut.size,
    transfersIn: fold.transfersIn.size,
    openReservations: state.open.size,
    expiredReservations: fold.expiredReservations,
    cancelledReservations: fold.cancelledReservations,
    cancelledOrders: fold.cancelledOrders,
  };
}

/**
 * The stored projections against the journals: each slice's stock row and snapshot, and every
 * confirmed order exactly once in the buyer dimension and once in the seller dimension. With
 * `rebuild`, whatever disagrees is rewritten from the journal (only while no engine runs).
 */
export async function checkProjections(
  pools: readonly pg.Pool[],
  orderDatabases: OrderDatabases,
  rebuild: boolean,
): Promise<{ violations: Violation[]; rebuilt: number }> {
  const report = await replayJournals(pools, orderDatabases, { repair: rebuild });
  const violations: Violation[] = [];
  let rebuilt = 0;
  for (const slice of report.slices) {
    if (slice.repaired) {
      rebuilt++;
      continue;
    }
    for (const problem of slice.problems) {
      const [what, detail] = problem.includes(': ') ? (problem.split(/: (.*)/s) as [string, string]) : ['projection', problem];
      violations.push({
        itemId: slice.itemId,
        sliceIndex: slice.sliceIndex,
        sequence: null,
        invariant: 'stored projections equal the journal (stock row, snapshot, buyer and seller order tables)',
        expected: `${what} as the journal folds it`,
        found: detail,
      });
    }
  }
  return { violations, rebuilt };
}
