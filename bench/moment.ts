/**
 * The two shapes a real sale takes (issue 13), measured in one run:
 *
 * 1. The moment, in-process: 100,000 buyers call `buy` at once on an item of 1,000 units, on a
 *    default item and on 4 slices. Every answer must be `order` or `sold_out`; the figure is how
 *    long after the last call the last answer came.
 * 2. The moment over WebSocket: 10,000 connections, one buyer each, all sending `buy` at the
 *    same instant on a default item of 1,000 units, against the real server. The figure is the
 *    server's CPU (its process, read from /proc) from just before the first frame to the last
 *    reply: the load generator shares the machine, so its CPU is not the server's.
 * 3. Many hot items: durable orders/s with 20,000 buyers in flight (closed loop) on one item,
 *    then spread over 200 items, each on its own fresh database, in the same run.
 *
 *   npm run bench:moment
 *   BENCH_MOMENT_BUYERS=100000 BENCH_WS_CONNECTIONS=10000 BENCH_HOT_ITEMS=200 BENCH_SECONDS=5 npm run bench:moment
 *
 * The last line is one JSON object for machines.
 */
import os from 'node:os';
import { createEngine, type Engine } from '../src/engine.js';
import { BuyerConnections, adminRequest, startServer, userTokens } from './contenders/serverProcess.js';
import { withDatabase } from './harness/child.js';
import { CpuMeter } from './harness/cpu.js';
import { readPositiveInteger } from './support/measure.js';

const momentBuyers = readPositiveInteger('BENCH_MOMENT_BUYERS', 100_000);
const momentStock = 1_000;
const wsConnections = readPositiveInteger('BENCH_WS_CONNECTIONS', 10_000);
const hotItems = readPositiveInteger('BENCH_HOT_ITEMS', 200);
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
  readonly wallMs: number;
}

/**
 * Two moments on the same server and connections: the first on a server that has served
 * nothing yet (its code not yet compiled by V8's JIT), the second on another item of the same
 * stock, as a server that has been serving meets the next sale.
 */
async function momentOverWebSocket(): Promise<{ cold: WebSocketMomentResult; warm: WebSocketMomentResult }> {
  return withDatabase('bench_moment_ws', async (database) => {
    const server = await startServer(database.url, wsConnections + 100);
    try {
      for (const itemId of ['1', '2']) {
        await adminRequest(server, 'POST', '/admin/items', { id: itemId, name: `The moment ${itemId}`, sellerId: '1', stock: momentStock });
      }
      const buyers = await BuyerConnections.open(server, await userTokens(server, wsConnections, 5_000_000));
      try {
        const moment = async (itemId: string): Promise<WebSocketMomentResult> => {
          const buy = buyers.buyer(itemId);
          const meter = new CpuMeter([{ label: 'server', pid: server.process.pid! }]);
          meter.begin();
          const started = performance.now();
          const attempts = await Promise.all(Array.from({ length: wsConnections }, () => buy()));
          const wallMs = performance.now() - started;
          const window = meter.end();
          const answers = tally(attempts.map((attempt) => (attempt.kind === 'order' ? { ok: true } : { ok: false, reason: attempt.reason })));
          return { answers, serverCpuMs: (window.cpuSeconds.server ?? Number.NaN) * 1_000, wallMs };
        };
        const cold = await moment('1');
        // Let the first moment's commits, projection and stock pushes settle.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const warm = await moment('2');
        return { cold, warm };
      } finally {
        await buyers.close();
      }
    } finally {
      server.process.kill('SIGTERM');
      await server.exited;
    }
  });
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

function line(result: MomentResult): string {
  return `${JSON.stringify(result.answers)}; calls made in ${result.callsMs.toFixed(0)} ms, last answer ${result.afterLastCallMs.toFixed(0)} ms after the last call`;
}

async function main(): Promise<void> {
  console.log('bench:moment: the flash-sale moment, and many hot items at once');
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} cores, node ${process.version}; load ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`);
  console.log(`PostgreSQL: a fresh embedded server per part (or DATABASE_URL), fsync on, synchronous_commit on`);

  const onDefault = await momentInProcess(undefined);
  console.log(`moment in-process, ${momentBuyers} buyers on ${momentStock} units, default item: ${line(onDefault)}`);
  const onFour = await momentInProcess(4);
  console.log(`moment in-process, ${momentBuyers} buyers on ${momentStock} units, 4 slices: ${line(onFour)}`);

  const overWebSocket = await momentOverWebSocket();
  for (const [label, result] of [['a server that served nothing yet', overWebSocket.cold], ['a server that served a moment before', overWebSocket.warm]] as const) {
    console.log(
      `moment over WebSocket, ${wsConnections} connections at once on ${momentStock} units, default item, ${label}: ${JSON.stringify(result.answers)}; ` +
        `server CPU ${result.serverCpuMs.toFixed(0)} ms from the first frame to the last reply (wall ${result.wallMs.toFixed(0)} ms, load generator on the same cores)`,
    );
  }

  const one = await hotItemsRun(1);
  const many = await hotItemsRun(hotItems);
  console.log(`one hot item: ${one.ordersPerSecond} durable orders/s, ${one.cpuUsPerOrder} µs CPU per order (node + postgres), ${inFlight} buyers in flight`);
  console.log(`${hotItems} hot items: ${many.ordersPerSecond} durable orders/s, ${many.cpuUsPerOrder} µs CPU per order, ${inFlight} buyers in flight spread over them`);
  const ratio = many.ordersPerSecond / one.ordersPerSecond;
  console.log(`ratio ${hotItems} items / one item: ${(ratio * 100).toFixed(0)}% (goal: at least 80%)`);
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
      momentWebSocketCold: { ...overWebSocket.cold.answers, serverCpuMs: Math.round(overWebSocket.cold.serverCpuMs), wallMs: Math.round(overWebSocket.cold.wallMs) },
      momentWebSocketWarm: { ...overWebSocket.warm.answers, serverCpuMs: Math.round(overWebSocket.warm.serverCpuMs), wallMs: Math.round(overWebSocket.warm.wallMs) },
      oneItemOrdersPerSecond: one.ordersPerSecond,
      manyItemsOrdersPerSecond: many.ordersPerSecond,
      hotItems,
      manyToOneRatio: Number(ratio.toFixed(3)),
      ordersPerSecondBySlices: Object.fromEntries(bySlices.map((run) => [run.slices, run.ordersPerSecond])),
      cores: os.cpus().length,
    }),
  );
}

await main();
process.exit(0);
