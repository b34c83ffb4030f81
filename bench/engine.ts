/**
 * Durable orders per second on ONE hot item through the in-process engine, beside the naive
 * baseline, in the same run, against the same PostgreSQL server.
 *
 *   npm run bench:engine                     # embedded PostgreSQL in a temporary directory
 *   DATABASE_URL=postgres://… npm run bench:engine
 *   BENCH_SECONDS=10 BENCH_IN_FLIGHT=20000 BENCH_BASELINE_CLIENTS=16,64 npm run bench:engine
 *
 * The baseline is what a shop writes first: one transaction per order, a guarded UPDATE of the
 * item row and an INSERT of the order, from many concurrent clients. The engine is measured as
 * a buyer sees it: an order counts when `buy` resolved, which is after its batch committed.
 * Both sides keep fsync and synchronous_commit on. The engine's order rows are written by its
 * projector, beside the load, into the order databases (two schemas in the bench database, 8
 * tables each); the projection lag is reported from the same run: per order, from its decision
 * to the commit of its projection, and the journal events not yet projected, sampled every 50 ms.
 * BENCH_PROJECTION=held holds the projector back during the window (the hot path alone) and
 * reports its catch-up afterwards.
 * The last line is one JSON object for machines.
 */
import os from 'node:os';
import pg from 'pg';
import { runEngineLoad } from './support/engineLoad.js';
import { freshDatabase, withBenchServer, percentile, readPositiveIntegerList, readPositiveInteger, serverSettings } from './support/measure.js';

const seconds = readPositiveInteger('BENCH_SECONDS', 8);
const warmupSeconds = 1;
const inFlight = readPositiveInteger('BENCH_IN_FLIGHT', 20_000);
const baselineClients = readPositiveIntegerList('BENCH_BASELINE_CLIENTS', [16, 64]);
const projectionText = process.env.BENCH_PROJECTION ?? 'live';
if (projectionText !== 'live' && projectionText !== 'held') throw new Error(`BENCH_PROJECTION must be live or held, got ${projectionText}`);
const projection: 'live' | 'held' = projectionText;

/** One transaction per order: the row lock and the commit flush serialise every buyer. */
async function runBaseline(databaseUrl: string, clients: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: clients });
  await pool.query(`
    DROP TABLE IF EXISTS baseline_item, baseline_order;
    CREATE TABLE baseline_item (id bigint PRIMARY KEY, quantity bigint NOT NULL CHECK (quantity >= 0));
    CREATE TABLE baseline_order (id bigserial PRIMARY KEY, item_id bigint NOT NULL, user_id bigint NOT NULL,
                                 quantity bigint NOT NULL, create_time bigint NOT NULL);
    INSERT INTO baseline_item VALUES (1, 1000000000);`);
  let orders = 0;
  let counting = false;
  let running = true;
  let nextUser = 1;
  const worker = async (): Promise<void> => {
    while (running) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const updated = await client.query('UPDATE baseline_item SET quantity = quantity - 1 WHERE id = 1 AND quantity >= 1');
        if (updated.rowCount === 1) {
          await client.query('INSERT INTO baseline_order (item_id, user_id, quantity, create_time) VALUES (1, $1, 1, $2)', [
            nextUser++,
            Date.now(),
          ]);
        }
        await client.query('COMMIT');
        if (counting && updated.rowCount === 1) orders++;
      } finally {
        client.release();
      }
    }
  };
  const workers = Array.from({ length: clients }, worker);
  await new Promise((resolve) => setTimeout(resolve, warmupSeconds * 1000));
  counting = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  counting = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(workers);
  await pool.end();
  return orders / elapsed;
}

async function main(): Promise<void> {
  await withBenchServer(async (serverUrl, source) => {
    const settings = await serverSettings(serverUrl);
    console.log('bench:engine — durable orders per second on one hot item');
    console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} × ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`);
    console.log(`postgres: ${settings.version} (${source}), fsync=${settings.fsync}, synchronous_commit=${settings.synchronousCommit}`);
    console.log(`window: ${warmupSeconds} s warm-up, then ${seconds} s measured, per run`);

    const baselineDatabase = await freshDatabase(serverUrl, 'bench_baseline');
    const baselineRuns: { clients: number; ordersPerSecond: number }[] = [];
    for (const clients of baselineClients) {
      const ordersPerSecond = await runBaseline(baselineDatabase, clients);
      baselineRuns.push({ clients, ordersPerSecond });
      console.log(`baseline (one transaction per order, ${clients} clients): ${ordersPerSecond.toFixed(0)} orders/s`);
    }
    // The baseline's best run is the one the engine is compared to.
    const baseline = baselineRuns.reduce((best, run) => (run.ordersPerSecond > best.ordersPerSecond ? run : best));

    const engineDatabase = await freshDatabase(serverUrl, 'bench_engine');
    const result = await runEngineLoad({ databaseUrl: engineDatabase, inFlight, warmupSeconds, seconds, projection });
    const sortedLatencies = result.latenciesMs;
    const sortedBatches = [...result.batchSizes].sort((left, right) => left - right);
    const meanBatch = result.batchSizes.reduce((sum, size) => sum + size, 0) / Math.max(1, result.batchSizes.length);
    const p50Ms = percentile(sortedLatencies, 0.5);
    const p99Ms = percentile(sortedLatencies, 0.99);
    const ratio = result.ordersPerSecond / baseline.ordersPerSecond;
    console.log(
      `engine (${inFlight} buyers in flight, one slice, projection ${projection === 'live' ? 'running beside the load' : 'held back during the window'}): ` +
        `${result.ordersPerSecond.toFixed(0)} orders/s`,
    );
    console.log(
      `  batches: ${result.batchSizes.length} flushes, events per flush mean ${meanBatch.toFixed(0)}, ` +
        `p50 ${percentile(sortedBatches, 0.5)}, max ${sortedBatches.at(-1) ?? 0}; ` +
        `flush p50 ${percentile([...result.flushMs].sort((a, b) => a - b), 0.5).toFixed(1)} ms`,
    );
    console.log(`  ack latency (buy call to committed reply): p50 ${p50Ms.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms`);
    const lagMs = result.projectionLagsMs;
    const lagEvents = result.projectionLagEvents;
    console.log(
      `  projection lag: p50 ${percentile(lagMs, 0.5).toFixed(0)} ms, p99 ${percentile(lagMs, 0.99).toFixed(0)} ms ` +
        `(${lagMs.length} order rows written in the window); p50 ${percentile(lagEvents, 0.5)} events, ` +
        `p99 ${percentile(lagEvents, 0.99)} events (${lagEvents.length} samples)`,
    );
    const catchUp = result.projectionCatchUp;
    console.log(
      `  projection catch-up after the load stopped: ${catchUp.events} journal events (the busiest order database) in ` +
        `${catchUp.seconds.toFixed(1)} s` +
        (catchUp.seconds > 0 ? ` (${(catchUp.events / catchUp.seconds).toFixed(0)} events/s)` : ''),
    );
    console.log(`ratio engine / best baseline (${baseline.clients} clients): ${ratio.toFixed(1)}x`);
    console.log(
      JSON.stringify({
        ordersPerSecond: Math.round(result.ordersPerSecond),
        baselineOrdersPerSecond: Math.round(baseline.ordersPerSecond),
        ratio: Number(ratio.toFixed(2)),
        baselineRuns: baselineRuns.map((run) => ({ clients: run.clients, ordersPerSecond: Math.round(run.ordersPerSecond) })),
        buyersInFlight: inFlight,
        flushes: result.batchSizes.length,
        meanEventsPerFlush: Math.round(meanBatch),
        p50Ms: Number(p50Ms.toFixed(2)),
        p99Ms: Number(p99Ms.toFixed(2)),
        projectionLagP50Ms: Math.round(percentile(lagMs, 0.5)),
        projectionLagP99Ms: Math.round(percentile(lagMs, 0.99)),
        projectionLagP50Events: percentile(lagEvents, 0.5),
        projectionLagP99Events: percentile(lagEvents, 0.99),
        projection,
        projectedOrderRows: lagMs.length,
        projectionCatchUpEvents: catchUp.events,
        projectionCatchUpSeconds: Number(catchUp.seconds.toFixed(2)),
        seconds,
        cores: os.cpus().length,
      }),
    );
  });
}

await main();
