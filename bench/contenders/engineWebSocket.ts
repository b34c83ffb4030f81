/**
 * Contender: the engine over WebSocket, the real server (`dist/src/cli.js serve` with npm start's
 * flags) in a child process, on a PostgreSQL of this contender's own, with many connections
 * held open, one user each, one hot item. An order counts when its `order` reply arrived, which
 * the server sends only after the order committed.
 *
 * The closed loop runs in bench/support/wsLoad.ts threads (every connection keeps one `buy` in
 * flight); the open loop and the sell-out run from this thread over as many connections. The CPU
 * per order is the server's process plus PostgreSQL's, never the load generator's.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { flushEventsMaxDefault } from '../../src/persistence/journal.js';
import { contenderMain, postgresConditions, withDatabase } from '../harness/child.js';
import { CpuMeter, type CpuSubject } from '../harness/cpu.js';
import { openLoop, sellOut } from '../harness/loops.js';
import { cpuFigures, halfOf, latencyFigures, loadNotes, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';
import type { FromMain, FromWorker, LoadWorkerData } from '../support/wsLoad.js';
import { checkEngineStore, readEngineStore } from './engineStore.js';
import { adminRequest, BuyerConnections, flushCounters, startServer, userTokens, type BenchServer } from './serverProcess.js';

const items = { closedLoop: '1', openLoop: '2', sellOut: '3' } as const;
const unlimitedStock = 1_000_000_000;
/** The largest per-user limit an item may have: far above what one connection buys in a run. */
const perUserLimit = 1_000_000;
const loadThreads = 2;

function messageOf(worker: Worker): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    worker.once('message', (message: FromWorker) => {
      worker.off('error', reject);
      resolve(message);
    });
    worker.once('error', reject);
  });
}

const nowMs = (): number => performance.timeOrigin + performance.now();
const sleepUntil = (atMs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, atMs - nowMs())));

interface ClosedLoopOutcome {
  readonly ordersPerSecond: number;
  readonly ordersInWindow: number;
  readonly acknowledged: string[];
  readonly cpu: ReturnType<CpuMeter['end']>;
  readonly meanEventsPerFlush: number;
  readonly unanswered: number;
  readonly rejected: number;
}

/** The maximum: wsLoad threads, every connection with one buy in flight, measured from here. */
async function runClosedLoop(server: BenchServer, settings: BenchSettings, meter: CpuMeter, tokens: readonly string[]): Promise<ClosedLoopOutcome> {
  const workers: Worker[] = [];
  try {
    for (let index = 0; index < loadThreads; index++) {
      const share = tokens.filter((_, tokenIndex) => tokenIndex % loadThreads === index);
      const data: LoadWorkerData = {
        url: `ws://127.0.0.1:${server.port}/ws`,
        itemId: items.closedLoop,
        tokens: share,
        activeConnections: share.length,
        watchers: 0,
        inFlight: 1,
        connectConcurrency: 64,
        collectOrderIds: true,
      };
      workers.push(new Worker(new URL('../support/wsLoad.js', import.meta.url), { workerData: data }));
    }
    for (const report of await Promise.all(workers.map(messageOf))) {
      if (report.kind !== 'connected' || report.failures > 0) throw new Error(`a load thread could not connect: ${JSON.stringify(report)}`);
    }
    // wsLoad starts its buyers a second before the window opens; the rest of the warm-up is ours.
    const measureFromMs = nowMs() + 500 + settings.warmupSeconds * 1000;
    const measureUntilMs = measureFromMs + settings.seconds * 1000;
    const done = workers.map(messageOf);
    for (const worker of workers) worker.postMessage({ kind: 'start', measureFromMs, measureUntilMs, stopAtMs: measureUntilMs } satisfies FromMain);
    await sleepUntil(measureFromMs);
    meter.begin();
    const flushesBefore = await flushCounters(server);
    await sleepUntil(measureUntilMs);
    const cpu = meter.end();
    const flushesAfter = await flushCounters(server);
    let ordersInWindow = 0;
    let unanswered = 0;
    let rejected = 0;
    const acknowledged: string[] = [];
    for (const result of await Promise.all(done)) {
      if (result.kind !== 'done') throw new Error(`unexpected ${result.kind} from a load thread`);
      ordersInWindow += result.ordersInWindow;
      unanswered += result.unanswered;
      rejected += Object.values(result.rejections).reduce((sum, count) => sum + count, 0);
      for (const orderId of result.orderIds ?? []) acknowledged.push(orderId);
    }
    const closed = workers.map(messageOf);
    for (const worker of workers) worker.postMessage({ kind: 'close' } satisfies FromMain);
    await Promise.all(closed);
    return {
      ordersPerSecond: ordersInWindow / settings.seconds,
      ordersInWindow,
      acknowledged,
      cpu,
      meanEventsPerFlush: (flushesAfter.events - flushesBefore.events) / Math.max(1, flushesAfter.flushes - flushesBefore.flushes),
      unanswered,
      rejected,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

async function run(settings: BenchSettings): Promise<ContenderResult> {
  return withDatabase('bench_ws', async (database) => {
    const server = await startServer(database.url, settings.connections * 2 + 100);
    let stopped = false;
    try {
      for (const [id, stock] of [
        [items.closedLoop, unlimitedStock],
        [items.openLoop, unlimitedStock],
        [items.sellOut, settings.sellOutStock],
      ] as const) {
        await adminRequest(server, 'POST', '/admin/items', { id, name: `Bench item ${id}`, sellerId: '1', stock, perUserLimit });
      }
      const subjects: CpuSubject[] = [{ label: 'server', pid: server.process.pid! }];
      if (database.postmasterPid !== null) subjects.push({ label: 'postgres', pid: database.postmasterPid });
      const maximum = await runClosedLoop(server, settings, new CpuMeter(subjects), await userTokens(server, settings.connections, 100_000));

      const buyers = await BuyerConnections.open(server, await userTokens(server, settings.connections, 200_000));
      const latency = await openLoop({ placeOrder: buyers.buyer(items.openLoop), ratePerSecond: halfOf(maximum.ordersPerSecond), seconds: settings.latencySeconds });
      const soldOut = await sellOut(buyers.buyer(items.sellOut), Math.min(settings.connections, 2 * settings.sellOutStock));
      await buyers.close();
      server.process.kill('SIGTERM');
      const exitCode = await server.exited;
      stopped = true;

      const store = await readEngineStore(database.url);
      const acknowledged = new Map([
        [items.closedLoop, maximum.acknowledged],
        [items.openLoop, latency.acknowledged],
        [items.sellOut, soldOut.acknowledged],
      ]);
      return {
        name: 'engine-ws',
        title: 'Engine over WebSocket (durable)',
        ordersPerSecond: maximum.ordersPerSecond,
        windowSeconds: maximum.cpu.seconds,
        cpu: cpuFigures(maximum.cpu, maximum.ordersInWindow, 'server', database.postmasterPid === null ? null : 'postgres'),
        latency: latencyFigures(latency),
        batch: { boundEvents: flushEventsMaxDefault, meanEvents: maximum.meanEventsPerFlush, p50Events: null, maxEvents: null },
        check: checkEngineStore(store, acknowledged, items.sellOut, 'the journal, read back as recovery reads it and folded with evolve, after the server stopped'),
        conditions: {
          clients: `${settings.connections} WebSocket connections (one user each), one buy in flight each, ${loadThreads} load threads (ws client)`,
          server: `node ${process.execArgv.join(' ')} dist/src/cli.js serve, shards by its default for ${os.cpus().length} cores`,
          batchBoundEvents: flushEventsMaxDefault,
          ...postgresConditions(database),
          loadGenerator: 'on the same machine; its CPU is not counted',
        },
        notes: [
          ...(store.replayConsistent ? [] : [`replay found the projections inconsistent: ${store.replayProblems.slice(0, 3).join('; ')}`]),
          ...(maximum.unanswered + maximum.rejected > 0 ? [`closed loop: ${maximum.rejected} rejected, ${maximum.unanswered} unanswered`] : []),
          ...loadNotes({ latency, sellOut: soldOut }),
          ...(exitCode === 0 ? [] : [`the server exited with ${exitCode} on SIGTERM`]),
        ],
      };
    } finally {
      if (!stopped) {
        server.process.kill('SIGTERM');
        await server.exited;
      }
    }
  });
}

contenderMain(run);
