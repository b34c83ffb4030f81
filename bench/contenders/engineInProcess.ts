/**
 * Contender: the engine in-process (`createEngine`, durable), one hot item, one slice in this
 * thread, distinct buyers. An order counts when `buy` resolved, which is after its batch
 * committed. CPU is this process (the engine and its load together: they cannot be told apart
 * in one thread) plus the PostgreSQL server's processes.
 */
import { createEngine, type Engine } from '../../src/engine.js';
import { flushEventsMaxDefault } from '../../src/persistence/journal.js';
import { contenderMain, postgresConditions, withDatabase } from '../harness/child.js';
import { CpuMeter, type CpuSubject } from '../harness/cpu.js';
import { closedLoop, openLoop, sellOut, type Attempt, type PlaceOrder } from '../harness/loops.js';
import { batchFigures, cpuFigures, halfOf, latencyFigures, loadNotes, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';
import { checkEngineStore, readEngineStore } from './engineStore.js';

const items = { closedLoop: '1', openLoop: '2', sellOut: '3' } as const;
/** Far more than any run sells, so only the sell-out item ever runs out. */
const unlimitedStock = 1_000_000_000;

async function createItem(engine: Engine, id: string, stock: number): Promise<void> {
  const created = await engine.createItem({ id, name: `Bench item ${id}`, sellerId: '1', stock });
  if (!created.ok) throw new Error(`creating item ${id} failed: ${created.message}`);
}

async function run(settings: BenchSettings): Promise<ContenderResult> {
  return withDatabase('bench_engine', async (database) => {
    const flushSizes: number[] = [];
    let measuring = false;
    const engine = await createEngine({
      databaseUrl: database.url,
      shards: 0,
      // BENCH_SNAPSHOT_EVERY=1000000000 turns snapshots off, to see what they cost.
      ...(process.env.BENCH_SNAPSHOT_EVERY ? { snapshotEvery: Number(process.env.BENCH_SNAPSHOT_EVERY) } : {}),
      onFlush: (report) => {
        if (measuring && report.committed) flushSizes.push(report.events);
      },
    });
    const acknowledged = new Map<string, string[]>();
    // Distinct buyers, so that every buy is an order and the per-user limit never bites.
    let nextUser = 1_000_000;
    const buyer = (itemId: string): PlaceOrder => async (): Promise<Attempt> => {
      const result = await engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 });
      return result.ok ? { kind: 'order', orderId: result.orderId } : { kind: 'refused', reason: result.reason };
    };
    let closed = false;
    try {
      await createItem(engine, items.closedLoop, unlimitedStock);
      await createItem(engine, items.openLoop, unlimitedStock);
      await createItem(engine, items.sellOut, settings.sellOutStock);

      const subjects: CpuSubject[] = [{ label: 'node', pid: 'self' }];
      if (database.postmasterPid !== null) subjects.push({ label: 'postgres', pid: database.postmasterPid });
      const meter = new CpuMeter(subjects);
      const maximum = await closedLoop({
        placeOrder: buyer(items.closedLoop),
        concurrency: settings.engineInFlight,
        warmupSeconds: settings.warmupSeconds,
        seconds: settings.seconds,
        meter,
        onWindowStart: () => {
          measuring = true;
        },
        onWindowEnd: () => {
          measuring = false;
        },
      });
      acknowledged.set(items.closedLoop, maximum.acknowledged);
      const ordersPerSecond = maximum.ordersInWindow / maximum.windowSeconds;

      const latency = await openLoop({ placeOrder: buyer(items.openLoop), ratePerSecond: halfOf(ordersPerSecond), seconds: settings.latencySeconds });
      acknowledged.set(items.openLoop, latency.acknowledged);
      const soldOut = await sellOut(buyer(items.sellOut), Math.min(settings.engineInFlight, 2 * settings.sellOutStock));
      acknowledged.set(items.sellOut, soldOut.acknowledged);
      await engine.close();
      closed = true;

      const store = await readEngineStore(database.url);
      return {
        name: 'engine',
        title: 'Engine in-process (durable)',
        ordersPerSecond,
        windowSeconds: maximum.windowSeconds,
        cpu: cpuFigures(maximum.cpu!, maximum.ordersInWindow, 'node', database.postmasterPid === null ? null : 'postgres'),
        latency: latencyFigures(latency),
        batch: batchFigures(flushSizes, flushEventsMaxDefault),
        check: checkEngineStore(store, acknowledged, items.sellOut, 'the journal, read back as recovery reads it and folded with evolve'),
        conditions: {
          clients: `${settings.engineInFlight} buyers in flight, distinct users`,
          slices: '1, in this thread (shards: 0)',
          processCpu: 'the engine and the buyers that drive it, one thread: they cannot be told apart',
          batchBoundEvents: flushEventsMaxDefault,
          ...postgresConditions(database),
          node: `${process.version} ${process.execArgv.join(' ')}`.trim(),
        },
        notes: [
          ...(store.replayConsistent ? [] : [`replay found the projections inconsistent: ${store.replayProblems.slice(0, 3).join('; ')}`]),
          ...loadNotes({ maximum, latency, sellOut: soldOut }),
        ],
      };
    } finally {
      if (!closed) await engine.close();
    }
  });
}

contenderMain(run);
