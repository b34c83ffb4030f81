/**
 * The two shapes a real sale takes (issue 13), measured in one run:
 *
 * 1. The moment, in-process: 100,000 buyers call `buy` at once on an item of 1,000 units, on a
 *    default item and on 4 slices. Every answer must be `order` or `sold_out`; the figure is how
 *    long after the last call the last answer came.
 * 2. The moment over WebSocket: 10,000 connections, one buyer each, all sending `buy` at the
 *    same instant on a default item of 1,000 units, against the real server. The figure is the
 *    server's CPU (its process, read from /proc) from just before the first frame to the last
 *    reply: the load generator shares the machine, so its CPU is not the server's. Beside it,
 *    the main thread's part (/proc/PID/task): the rest is V8's compiler and collector threads.
 *    A new server with and one without the rehearsal of a sale at start, and one with it whose
 *    buyers' frames carry idempotency keys (as the client library sends them), each
 *    `BENCH_WS_MOMENT_RUNS` times, alternately; each meets two moments, and the medians are
 *    printed.
 * 3. Many hot items: durable orders/s with 20,000 buyers in flight (closed loop) on one item,
 *    then spread over 200 items, each on its own fresh database, in the same run. The two
 *    alternate over `BENCH_HOT_ROUNDS` rounds and the figures are the medians: the machine's
 *    speed drifts over a run, and one window of each, one after the other, put the drift into
 *    the ratio.
 *
 *   npm run bench:moment
 *   BENCH_MOMENT_BUYERS=100000 BENCH_WS_CONNECTIONS=10000 BENCH_WS_MOMENT_RUNS=3 BENCH_HOT_ITEMS=200 BENCH_HOT_ROUNDS=3 BENCH_SECONDS=5 npm run bench:moment
 *
 * The last line is one JSON object for machines.
 */
import os from 'node:os';
import { createEngine, type Engine } from '../src/engine.js';
import { BuyerConnections, adminRequest, startServer, userTokens } from './contenders/serverProcess.js';
import { withDatabase } from './harness/child.js';
import { CpuMeter, clockTicksPerSecond, threadTicks } from './harness/cpu.js';
import { readPositiveInteger } from './support/measure.js';

const momentBuyers = readPositiveInteger('BENCH_MOMENT_BUYERS', 100_000);
const momentStock = 1_000;
const wsConnections = readPositiveInteger('BENCH_WS_CONNECTIONS', 10_000);
const wsMomentRuns = readPositiveInteger('BENCH_WS_MOMENT_RUNS', 3);
const hotItems = readPositiveInteger('BENCH_HOT_ITEMS', 200);
const hotRounds = readPositiveInteger('BENCH_HOT_ROUNDS', 3);
const inFlight = readPositiveInteger('BENCH_IN_FLIGHT', 20_000);
const seconds = readPositiveInteger('BENCH_SECONDS', 5);

type Outcome = Awaited<ReturnType<Engine['buy']>>;

function tally(outcomes: readonly { ok: boolean; reason?: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.ok ? 'order' : (outcome.reason ?? 'unknown');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

interface MomentResult {
  readonly answers: Record<string, number>;
  readonly callsMs: number;
  readonly afterLastCallMs: number;
}

async function momentInProcess(slices: number | undefined): Promise<MomentResult> {
  return withDatabase('bench_moment', async (database) => {
    const engine = await createEngine({ databaseUrl: database.url });
    try {
      const created = await engine.createItem({ id: '1', name: 'The moment', sellerId: '1', stock: momentStock, ...(slices === undefined ? {} : { slices }) });
      if (!created.ok) throw new Error(`creating the item failed: ${created.message}`);
      const started = performance.now();
      const calls: Promise<Outcome>[] = [];
      for (let index = 0; index < momentBuyers; index++) calls.push(engine.buy({ userId: String(1_000_000 + index) }, { itemId: '1', quantity: 1 }));
      const lastCall = performance.now();
      const outcomes = await Promise.all(calls);
      const lastAnswer = performance.now();
      return { answers: tally(outcomes as { ok: boolean; reason?: string }[]), callsMs: lastCall - started, afterLastCallMs: lastAnswer - lastCall };
    } finally {
      await engine.close();
    }
  });
}

interface WebSocketMomentResult {
  readonly answers: Record<string, number>;
  readonly serverCpuMs: number;
  /** Of `serverCpuMs`, the server's main thread (its JavaScript and event loop); the rest is V8's and libuv's other threads. */
  readonly mainThreadCpuMs: number;
  readonly wallMs: number;
}

/**
 * Two moments on the same server and connections: the first on a server that has served no
 * buyer yet, the second on another item of the same stock, as a server that has been serving
 * meets the next sale. `rehearsalBuyers` is the server's SECKILL_REHEARSAL_BUYERS: 0 starts it
 * without the rehearsal of a sale (src/server/rehearsal.ts), so its first moment runs on code
 * V8 has not compiled yet.
 */
async function momentOverWebSocket(
  rehearsalBuyers: number | undefined,
  keyed: boolean,
): Promise<{ first: WebSocketMomentResult; second: WebSocketMomentResult }> {
  return withDatabase('bench_moment_ws', async (database) => {
    const environment: Record<string, string> = rehearsalBuyers === undefined ? {} : { SECKILL_REHEARSAL_BUYERS: String(rehearsalBuyers) };
    const server = await startServer(database.url, wsConnections + 100, environment);
    try {
      for (const itemId of ['1', '2']) {
        await adminRequest(server, 'POST', '/admin/items', { id: itemId, name: `The moment ${itemId}`, sellerId: '1', stock: momentStock });
      }
      const buyers = await BuyerConnections.open(server, await userTokens(server, wsConnections, 5_000_000));
      try {
        const moment = async (itemId: string): Promise<WebSocketMomentResult> => {
          const buy = buyers.buyer(itemId, keyed);
          const meter = new CpuMeter([{ label: 'server', pid: server.process.pid! }]);
          const threadsBefore = threadTicks(server.process.pid!);
          meter.begin();
          const started = performance.now();
          const attempts = await Promise.all(Array.from({ length: wsConnections }, () => buy()));
          const wallMs = performance.now() - started;
          const window = meter.end();
          const mainThreadTicks = threadTicks(server.process.pid!).mainThread - threadsBefore.mainThread;
          const answers = tally(attempts.map((attempt) => (attempt.kind === 'order' ? { ok: true } : { ok: false, reason: attempt.reason })));
          return {
            answers,
            serverCpuMs: (window.cpuSeconds.server ?? Number.NaN) * 1_000,
            mainThreadCpuMs: (mainThreadTicks / clockTicksPerSecond) * 1_000,
            wallMs,
          };
        };
        const first = await moment('1');
        // Let the first moment's commits, projection and stock pushes settle.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const second = await moment('2');
        return { first, second };
      } finally {
        await buyers.close();
      }
    } finally {
      server.process.kill('SIGTERM');
      await server.exited;
    }
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface HotItemsResult {
  readonly items: number;
  readonly slices: number;
  readonly ordersPerSecond: number;
  readonly cpuUsPerOrder: number;
}

/** Durable orders/s with `inFlight` closed-loop buyers spread round-robin over `items` items of `slices` slices. */
async function hotItemsRun(items: number, slices = 1): Promise<HotItemsResult> {
  return withDatabase(`bench_hot_${items}_${slices}`, async (database) => {
    const engine = await createEngine({ databaseUrl: database.url });
    try {
      for (let index = 0; index < items; index++) {
        const created = await engine.createItem({ id: String(index + 1), name: `Hot item ${index + 1}`, sellerId: '1', stock: 1_000_000_000, slices });
        if (!created.ok) throw new Error(`creating item ${index + 1} failed: ${created.message}`);
      }
      let nextUser = 10_000_000;
      let orders = 0;
      let counting = false;
      let running = true;
      const buyer = async (slot: number): Promise<void> => {
        const itemId = String((slot % items) + 1);
        while (running) {
          const result = await engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 });
          if (!result.ok) throw new Error(`a buy was refused: ${result.reason}`);
          if (counting) orders++;
        }
      };
      const loops = Array.from({ length: inFlight }, (_, slot) => buyer(slot));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const subjects = [{ label: 'node', pid: 'self' as const }, ...(database.postmasterPid === null ? [] : [{ label: 'postgres', pid: database.postmasterPid }])];
      const meter = new CpuMeter(subjects);
      meter.begin();
      counting = true;
      await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
      counting = false;
      const window = meter.end();
      running = false;
      await Promise.all(loops);
      const cpuSeconds = (window.cpuSeconds.node ?? 0) + (window.cpuSeconds.postgres ?? 0);
      return { items, slices, ordersPerSecond: Math.round(orders / window.seconds), cpuUsPerOrder: Number(((cpuSeconds * 1e6) / orders).toFixed(2)) };
    } finally {
      await engine.close();
    }
  });
}

/** The median orders/s and the median CPU per order of runs of one shape. */
function medianRun(runs: readonly HotItemsResult[]): HotItemsResult {
  return {
    items: runs[0]!.items,
    slices: runs[0]!.slices,
    ordersPerSecond: Math.round(median(runs.map((run) => run.ordersPerSecond))),
    cpuUsPerOrder: Number(median(runs.map((run) => run.cpuUsPerOrder)).toFixed(2)),
  };
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`;
}

function line(result: MomentResult): string {
  return `${JSON.stringify(result.answers)}; calls made in ${result.callsMs.toFixed(0)} ms, last answer ${result.afterLastCallMs.toFixed(0)} ms after the last call`;
}

async function main(): Promise<void> {
  console.log('bench:moment: the flash-sale moment, and many hot items at once');
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} cores, node ${process.version}; load ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`);
  console.log(`PostgreSQL: a fresh embedded server per part (or DATABASE_URL), fsync on, synchronous_commit on`);

  // The WebSocket moments come first, while this process (the load generator) holds little:
  // after the in-process moments, its own garbage collection would pause its sends, and the
  // server would read the frames in smaller batches, at a higher cost per frame.
  // The server's CPU over one moment moves by a fifth from run to run (how the frames of the
  // load generator, on the same cores, fall into the server's reads), so each kind of server
  // runs several times, alternately, and the medians are the figures.
  // The third kind: the default server, its buyers' frames carrying idempotency keys, as the
  // client library sends them (a retry must get its original order, so these take another path).
  const withoutRehearsal: { first: WebSocketMomentResult; second: WebSocketMomentResult }[] = [];
  const withRehearsal: { first: WebSocketMomentResult; second: WebSocketMomentResult }[] = [];
  const keyedFrames: { first: WebSocketMomentResult; second: WebSocketMomentResult }[] = [];
  for (let run = 1; run <= wsMomentRuns; run++) {
    for (const [label, runs, rehearsalBuyers, keyed] of [
      ['without the rehearsal at start (SECKILL_REHEARSAL_BUYERS=0)', withoutRehearsal, 0, false],
      ['with the rehearsal at start (the default)', withRehearsal, undefined, false],
      ['with the rehearsal at start, every frame with an idempotency key', keyedFrames, undefined, true],
    ] as const) {
      const result = await momentOverWebSocket(rehearsalBuyers, keyed);
      runs.push(result);
      console.log(
        `moment over WebSocket, run ${run}, a new server ${label}, ${wsConnections} connections at once on ${momentStock} units, default item: ` +
          `first moment ${JSON.stringify(result.first.answers)} server CPU ${result.first.serverCpuMs.toFixed(0)} ms, main thread ${result.first.mainThreadCpuMs.toFixed(0)} ms (wall ${result.first.wallMs.toFixed(0)} ms); ` +
          `second moment ${JSON.stringify(result.second.answers)} server CPU ${result.second.serverCpuMs.toFixed(0)} ms, main thread ${result.second.mainThreadCpuMs.toFixed(0)} ms (wall ${result.second.wallMs.toFixed(0)} ms)`,
      );
    }
  }
  const medianOf = (runs: typeof withRehearsal, moment: 'first' | 'second', figure: 'serverCpuMs' | 'mainThreadCpuMs'): number =>
    Math.round(median(runs.map((result) => result[moment][figure])));
  const figuresOf = (runs: typeof withRehearsal) => ({
    firstMomentCpuMs: medianOf(runs, 'first', 'serverCpuMs'),
    secondMomentCpuMs: medianOf(runs, 'second', 'serverCpuMs'),
    firstMomentMainThreadCpuMs: medianOf(runs, 'first', 'mainThreadCpuMs'),
    secondMomentMainThreadCpuMs: medianOf(runs, 'second', 'mainThreadCpuMs'),
  });
  const webSocketFigures = {
    withoutRehearsal: figuresOf(withoutRehearsal),
    withRehearsal: figuresOf(withRehearsal),
    keyedFrames: figuresOf(keyedFrames),
    answers: [...withoutRehearsal, ...withRehearsal, ...keyedFrames].flatMap((result) => [result.first.answers, result.second.answers]),
  };
  console.log(
    `moment over WebSocket, median server CPU from the first frame to the last reply over ${wsMomentRuns} runs (goal: under 300 ms): ` +
      `without the rehearsal ${webSocketFigures.withoutRehearsal.firstMomentCpuMs} ms on the first moment, ${webSocketFigures.withoutRehearsal.secondMomentCpuMs} ms on the second; ` +
      `with it ${webSocketFigures.withRehearsal.firstMomentCpuMs} ms on the first, ${webSocketFigures.withRehearsal.secondMomentCpuMs} ms on the second; ` +
      `with it and keyed frames ${webSocketFigures.keyedFrames.firstMomentCpuMs} ms on the first, ${webSocketFigures.keyedFrames.secondMomentCpuMs} ms on the second`,
  );
  // The main thread's share tells what moves a moment: the kernel's and our JavaScript's work on
  // every frame is there; V8's compiling and collecting run on its other threads.
  console.log(
    `moment over WebSocket, median of the server's main thread alone: ` +
      `without the rehearsal ${webSocketFigures.withoutRehearsal.firstMomentMainThreadCpuMs} and ${webSocketFigures.withoutRehearsal.secondMomentMainThreadCpuMs} ms; ` +
      `with it ${webSocketFigures.withRehearsal.firstMomentMainThreadCpuMs} and ${webSocketFigures.withRehearsal.secondMomentMainThreadCpuMs} ms; ` +
      `with it and keyed frames ${webSocketFigures.keyedFrames.firstMomentMainThreadCpuMs} and ${webSocketFigures.keyedFrames.secondMomentMainThreadCpuMs} ms (first and second moment)`,
  );

  const onDefault = await momentInProcess(undefined);
  console.log(`moment in-process, ${momentBuyers} buyers on ${momentStock} units, default item: ${line(onDefault)}`);
  const onFour = await momentInProcess(4);
  console.log(`moment in-process, ${momentBuyers} buyers on ${momentStock} units, 4 slices: ${line(onFour)}`);

  const ones: HotItemsResult[] = [];
  const manys: HotItemsResult[] = [];
  for (let round = 1; round <= hotRounds; round++) {
    const oneOfRound = await hotItemsRun(1);
    const manyOfRound = await hotItemsRun(hotItems);
    ones.push(oneOfRound);
    manys.push(manyOfRound);
    console.log(
      `hot items, round ${round}: one item ${oneOfRound.ordersPerSecond} durable orders/s at ${oneOfRound.cpuUsPerOrder} µs CPU per order; ` +
        `${hotItems} items ${manyOfRound.ordersPerSecond}/s at ${manyOfRound.cpuUsPerOrder} µs; ratio ${percent(manyOfRound.ordersPerSecond / oneOfRound.ordersPerSecond)}`,
    );
  }
  const one = medianRun(ones);
  const many = medianRun(manys);
  console.log(`one hot item: ${one.ordersPerSecond} durable orders/s, ${one.cpuUsPerOrder} µs CPU per order (node + postgres), ${inFlight} buyers in flight; medians over ${hotRounds} rounds`);
  console.log(`${hotItems} hot items: ${many.ordersPerSecond} durable orders/s, ${many.cpuUsPerOrder} µs CPU per order, ${inFlight} buyers in flight spread over them; medians over ${hotRounds} rounds`);
  const ratio = many.ordersPerSecond / one.ordersPerSecond;
  console.log(`ratio ${hotItems} items / one item: ${percent(ratio)} (goal: at least 80%)`);
  // The default number of slices for an item created without one: one hot item, in this thread.
  const bySlices = [one];
  for (const slices of [2, 4]) bySlices.push(await hotItemsRun(1, slices));
  for (const run of bySlices) {
    console.log(`one hot item of ${run.slices} slice(s), in this thread: ${run.ordersPerSecond} durable orders/s, ${run.cpuUsPerOrder} µs CPU per order`);
  }
  console.log(
    JSON.stringify({
      momentDefault: { ...onDefault.answers, afterLastCallMs: Math.round(onDefault.afterLastCallMs) },
      momentFourSlices: { ...onFour.answers, afterLastCallMs: Math.round(onFour.afterLastCallMs) },
      momentWebSocket: webSocketFigures,
      oneItemOrdersPerSecond: one.ordersPerSecond,
      manyItemsOrdersPerSecond: many.ordersPerSecond,
      hotItems,
      manyToOneRatio: Number(ratio.toFixed(3)),
      manyToOneRatioByRound: manys.map((run, round) => Number((run.ordersPerSecond / ones[round]!.ordersPerSecond).toFixed(3))),
      ordersPerSecondBySlices: Object.fromEntries(bySlices.map((run) => [run.slices, run.ordersPerSecond])),
      cores: os.cpus().length,
    }),
  );
}

await main();
process.exit(0);
