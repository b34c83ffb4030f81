/**
 * A closed loop of buyers against one hot item in an in-process engine: each buyer buys again
 * as soon as its order is acknowledged (committed). Shared by the engine benchmarks.
 */
import { createEngine } from '../../src/engine.js';

export interface EngineLoadOptions {
  readonly databaseUrl: string;
  readonly inFlight: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly shards?: number;
  readonly slices?: number;
  /**
   * `live` (the default): the projector writes the order rows beside the load, as in service.
   * `held`: the projector is held back during the measured window and catches up afterwards,
   * so the window measures the hot path alone.
   */
  readonly projection?: 'live' | 'held';
}

export interface EngineLoadResult {
  readonly ordersPerSecond: number;
  /** Send-to-acknowledgement times of the measured orders, in milliseconds, ascending. */
  readonly latenciesMs: number[];
  /** Events per journal flush (in-process engines only; shard workers keep theirs). */
  readonly batchSizes: number[];
  readonly flushMs: number[];
  /**
   * For every order written by the projector in the measured window (in each order database):
   * from its decision to the commit of its projection, in milliseconds, ascending.
   */
  readonly projectionLagsMs: number[];
  /** Journal events not yet in an order database, sampled every 50 ms of the window, ascending. */
  readonly projectionLagEvents: number[];
  /**
   * After the load stopped: the journal events the busiest order database still took in (as
   * counted by its projection batches), and how long until everything was projected.
   */
  readonly projectionCatchUp: { readonly events: number; readonly seconds: number };
}

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

export async function runEngineLoad(options: EngineLoadOptions): Promise<EngineLoadResult> {
  const batchSizes: number[] = [];
  const flushMs: number[] = [];
  const projectionLagsMs: number[] = [];
  const projectionLagEvents: number[] = [];
  let measuring = false;
  /** Events taken in per order database after the load stopped, while `catchingUp`. */
  const caughtUpEvents = new Map<number, number>();
  let catchingUp = false;
  const engine = await createEngine({
    databaseUrl: options.databaseUrl,
    shards: options.shards ?? 0,
    onFlush: (report) => {
      if (measuring && report.committed) {
        batchSizes.push(report.events);
        flushMs.push(report.durationMs);
      }
    },
    onProjection: (report) => {
      if (measuring) for (const lagMs of report.lagsMs) projectionLagsMs.push(lagMs);
      if (catchingUp) caughtUpEvents.set(report.orderDatabaseIndex, (caughtUpEvents.get(report.orderDatabaseIndex) ?? 0) + report.events);
    },
  });
  const itemId = String(Date.now());
  const created = await engine.createItem({
    id: itemId,
    name: 'Hot item',
    sellerId: '1',
    stock: 1_000_000_000,
    slices: options.slices ?? 1,
  });
  if (!created.ok) throw new Error(`creating the item failed: ${created.message}`);

  let orders = 0;
  let refused = 0;
  let running = true;
  // Distinct buyers, so every buy is an order and the per-user limit never bites.
  let nextUser = Date.now() * 1_000;
  const latenciesMs: number[] = [];
  const buyer = async (): Promise<void> => {
    while (running) {
      const sent = performance.now();
      const result = await engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 });
      if (!measuring) continue;
      if (result.ok) {
        orders++;
        latenciesMs.push(performance.now() - sent);
      } else {
        refused++;
      }
    }
  };
  const buyers = Array.from({ length: options.inFlight }, buyer);
  await sleep(options.warmupSeconds * 1000);
  if (options.projection === 'held') await engine.orderService.pauseProjection();
  measuring = true;
  const started = performance.now();
  const sampler = setInterval(() => projectionLagEvents.push(engine.orderService.projectionLagEvents), 50);
  await sleep(options.seconds * 1000);
  clearInterval(sampler);
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(buyers);
  catchingUp = true;
  const catchUpStarted = performance.now();
  engine.orderService.resumeProjection();
  if (!(await engine.orderService.whenProjected(600_000))) throw new Error('the projection did not catch up within 10 minutes');
  catchingUp = false;
  const projectionCatchUp = { events: Math.max(0, ...caughtUpEvents.values()), seconds: (performance.now() - catchUpStarted) / 1000 };
  const view = engine.item(itemId)!;
  await engine.close();
  if (refused > 0) throw new Error(`${refused} buys were refused; the measurement would not be of orders`);
  if (view.available + view.reserved + view.sold !== view.stock) throw new Error('the item does not balance');
  const ascending = (values: number[]) => values.sort((left, right) => left - right);
  return {
    ordersPerSecond: orders / elapsed,
    latenciesMs: ascending(latenciesMs),
    batchSizes,
    flushMs,
    projectionLagsMs: ascending(projectionLagsMs),
    projectionLagEvents: ascending(projectionLagEvents),
    projectionCatchUp,
  };
}
