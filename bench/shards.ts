/**
 * Durable orders per second on ONE hot item split over 1, 2 and 4 slices, each slice on its
 * own shard worker, in one run against one PostgreSQL, with the ratio to one slice. The same
 * item served in the front end's own thread (no worker) runs too: it is what the engine
 * defaults to when it is faster on this machine.
 *
 *   npm run bench:shards
 *   BENCH_SECONDS=8 BENCH_IN_FLIGHT=20000 BENCH_SLICES=1,2,4 npm run bench:shards
 */
import os from 'node:os';
import { runEngineLoad } from './support/engineLoad.js';
import { freshDatabase, withBenchServer, percentile, readPositiveInteger, readPositiveIntegerList, serverSettings } from './support/measure.js';

const seconds = readPositiveInteger('BENCH_SECONDS', 6);
const warmupSeconds = 1;
const inFlight = readPositiveInteger('BENCH_IN_FLIGHT', 20_000);
const sliceCounts = readPositiveIntegerList('BENCH_SLICES', [1, 2, 4]);

async function main(): Promise<void> {
  await withBenchServer(async (serverUrl, source) => {
    const settings = await serverSettings(serverUrl);
    console.log('bench:shards — durable orders per second on one hot item, by slices and shard workers');
    console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} × ${os.cpus().length} cores, node ${process.version}`);
    console.log(`postgres: ${settings.version} (${source}), fsync=${settings.fsync}, synchronous_commit=${settings.synchronousCommit}`);
    console.log(`load: ${inFlight} buyers in flight, distinct users; ${warmupSeconds} s warm-up, ${seconds} s measured per run`);

    const runs: { label: string; shards: number; slices: number; ordersPerSecond: number; p50Ms: number; p99Ms: number }[] = [];
    const configurations = [
      { label: 'in-thread, 1 slice', shards: 0, slices: 1 },
      ...sliceCounts.map((slices) => ({ label: `${slices} shard worker(s), ${slices} slice(s)`, shards: slices, slices })),
    ];
    for (const [index, configuration] of configurations.entries()) {
      const databaseUrl = await freshDatabase(serverUrl, `bench_shards_${index}`);
      const result = await runEngineLoad({ databaseUrl, inFlight, warmupSeconds, seconds, ...configuration });
      const run = {
        ...configuration,
        ordersPerSecond: result.ordersPerSecond,
        p50Ms: percentile(result.latenciesMs, 0.5),
        p99Ms: percentile(result.latenciesMs, 0.99),
      };
      runs.push(run);
      console.log(
        `${configuration.label.padEnd(32)} ${run.ordersPerSecond.toFixed(0).padStart(7)} orders/s   ` +
          `p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms`,
      );
    }
    const oneSlice = runs.find((run) => run.shards === 1 && run.slices === 1) ?? runs[0]!;
    for (const run of runs) {
      console.log(`ratio to 1 slice on 1 shard: ${run.label.padEnd(32)} ${(run.ordersPerSecond / oneSlice.ordersPerSecond).toFixed(2)}x`);
    }
    console.log(
      JSON.stringify({
        runs: runs.map((run) => ({
          shards: run.shards,
          slices: run.slices,
          ordersPerSecond: Math.round(run.ordersPerSecond),
          ratioToOneSlice: Number((run.ordersPerSecond / oneSlice.ordersPerSecond).toFixed(2)),
          p50Ms: Number(run.p50Ms.toFixed(2)),
          p99Ms: Number(run.p99Ms.toFixed(2)),
        })),
        buyersInFlight: inFlight,
        seconds,
        cores: os.cpus().length,
      }),
    );
  });
}

await main();
