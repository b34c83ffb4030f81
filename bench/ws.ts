/**
 * Durable orders per second over WebSockets against the real server, with many connections
 * held open, on ONE hot item.
 *
 *   npm run bench:ws
 *   BENCH_CONNECTIONS=10000 BENCH_ACTIVE_CONNECTIONS=10000 BENCH_IN_FLIGHT=1 BENCH_SECONDS=10 \
 *   BENCH_WARMUP_SECONDS=2 BENCH_WORKERS=2 BENCH_WATCHERS=100 BENCH_STOCK=50000000 npm run bench:ws
 *   BENCH_SERVER_NODE_FLAGS="--max-semi-space-size=32" npm run bench:ws   # other V8 flags than npm start's
 *
 * What it does, by itself and only on 127.0.0.1:
 * 1. Starts the server (`node dist/src/cli.js serve`, as `npm start` does) as a child process on an
 *    embedded PostgreSQL in a temporary directory, so the server's resident memory can be read
 *    from /proc/PID/status.
 * 2. Creates one item with enough stock that it never sells out during the run.
 * 3. Opens BENCH_CONNECTIONS WebSocket connections, one user each, from BENCH_WORKERS load
 *    threads (the `ws` package as the client), and holds them all.
 * 4. Every active connection keeps BENCH_IN_FLIGHT `buy` requests outstanding (a closed loop);
 *    BENCH_WATCHERS connections also subscribe to the item's stock pushes.
 * 5. After a warm-up, measures for BENCH_SECONDS: orders whose `order` reply arrived (a reply
 *    the server sends only after the order committed to PostgreSQL), and the latency from send
 *    to `order`.
 * 6. Checks that the item's committed `sold` figure equals every order acknowledged, stops the
 *    server with SIGTERM and removes the temporary directory.
 *
 * The load generator shares the machine's cores with the server and PostgreSQL, so the figures
 * are a floor; the CPU each of the three used is printed. Each connection needs an open file in
 * this process and one in the server: with a hard open-file limit below BENCH_CONNECTIONS + 1024
 * the bench says so and stops before it starts anything. The whole run is bounded by
 * BENCH_DEADLINE_SECONDS (300). The last line is one JSON object for machines.
 *
 * Latency is measured in a closed loop, so at saturation p50 is about the requests in flight
 * divided by the throughput (Little's law); BENCH_ACTIVE_CONNECTIONS lets fewer of the held
 * connections buy, to see the latency below saturation.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SignJWT } from 'jose';
import { flushEventsMaxDefault } from '../src/persistence/journal.js';
import { CpuMeter, readProcessTable } from './harness/cpu.js';
import { percentile, readPositiveInteger } from './support/measure.js';
import { openFileLimit, residentMemoryMb, startScriptFlags } from './support/processes.js';
import { runningServerChildren, startServerChild, type ServerChild } from './support/serverChild.js';
import type { FromMain, FromWorker, LoadWorkerData } from './support/wsLoad.js';

const connections = readPositiveInteger('BENCH_CONNECTIONS', 10_000);
const activeConnections = Math.min(connections, readPositiveInteger('BENCH_ACTIVE_CONNECTIONS', connections));
const seconds = readPositiveInteger('BENCH_SECONDS', 10);
const warmupSeconds = readPositiveInteger('BENCH_WARMUP_SECONDS', 2);
const inFlight = readPositiveInteger('BENCH_IN_FLIGHT', 1);
const workerCount = Math.min(connections, readPositiveInteger('BENCH_WORKERS', 2));
const watchers = Math.min(connections, readPositiveInteger('BENCH_WATCHERS', 100));
const stock = readPositiveInteger('BENCH_STOCK', 50_000_000);
/** The largest per-user limit an item may have; far above what one user buys in a run. */
const perUserLimit = 1_000_000;
/** The whole run is bounded: past this the bench stops the server and exits with an error. */
const deadlineSeconds = readPositiveInteger('BENCH_DEADLINE_SECONDS', 300);
/** File descriptors beyond the connections: PostgreSQL, pipes, the HTTP client. */
const descriptorHeadroom = 1_024;

const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The same V8 flags as `npm start` (read from package.json), so the server is measured as it is run. */
const serverNodeFlags =
  process.env.BENCH_SERVER_NODE_FLAGS === undefined
    ? startScriptFlags(projectDirectory)
    : process.env.BENCH_SERVER_NODE_FLAGS.split(' ').filter((flag) => flag !== '');

/**
 * Each connection is one descriptor here and one in the server. Node raises its own soft
 * open-file limit to the hard limit at start (and the server child inherits it), so only a hard
 * limit that is too low can stop the bench; it then says so and how to fix it, rather than
 * failing midway with EMFILE.
 */
function checkOpenFileLimit(): void {
  const needed = connections + descriptorHeadroom;
  const { soft, hard } = openFileLimit();
  if (soft >= needed) return;
  console.error(
    `bench:ws needs ${needed} open files for ${connections} connections, but the limit is ${soft} (hard limit ${hard}). ` +
      `Raise it (for example \`ulimit -n ${needed}\` as root, or nofile in /etc/security/limits.conf) ` +
      `or run with fewer connections (BENCH_CONNECTIONS=${Math.max(1, soft - descriptorHeadroom)}).`,
  );
  process.exit(1);
}


async function adminRequest(port: number, adminToken: string, method: string, route: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text}`);
  return route === '/metrics' ? text : JSON.parse(text);
}

function metricValue(metrics: string, name: string): number {
  return Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
}

function messageOf(worker: Worker): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker): void => {
      worker.off('error', reject);
      resolve(message);
    };
    worker.once('message', onMessage);
    worker.once('error', reject);
  });
}

async function main(): Promise<void> {
  checkOpenFileLimit();
  const deadline = setTimeout(() => {
    console.error(`bench:ws did not finish within ${deadlineSeconds} s; stopping the server and giving up`);
    const child = runningServerChildren()[0];
    if (child === undefined) process.exit(1);
    child.once('exit', () => process.exit(1));
    child.kill('SIGTERM');
    setTimeout(() => process.exit(1), 30_000).unref();
  }, deadlineSeconds * 1000);
  deadline.unref();

  const cpus = os.cpus();
  console.log('bench:ws — durable orders per second over WebSockets, one hot item, real server');
  console.log(
    `machine: ${cpus[0]?.model ?? 'unknown cpu'} × ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `node ${process.version}, open-file limit ${openFileLimit().soft}`,
  );
  console.log(
    `load: ${connections} connections (${connections} users, one each), ${activeConnections} buying with ${inFlight} ` +
      `request(s) in flight each, ${watchers} subscribed to stock pushes, ${workerCount} load thread(s) (ws client), ` +
      `loopback 127.0.0.1`,
  );
  console.log(`window: ${warmupSeconds} s warm-up, then ${seconds} s measured; item stock ${stock}, per-user limit ${perUserLimit}`);
  console.log(
    `server: node ${serverNodeFlags.join(' ')} dist/src/cli.js serve (the flags of npm start unless BENCH_SERVER_NODE_FLAGS), embedded PostgreSQL ` +
      `(fsync on, synchronous_commit on), journal batches of at most ${process.env.SECKILL_FLUSH_EVENTS_MAX ?? flushEventsMaxDefault} events`,
  );

  const temporaryDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-bench-ws-'));
  const jwtSecret = randomBytes(32).toString('base64url');
  const adminToken = randomBytes(24).toString('base64url');
  let server: ServerChild | undefined;
  const workers: Worker[] = [];
  try {
    const starting = performance.now();
    server = await startServerChild({
      projectDirectory,
      nodeFlags: serverNodeFlags,
      database: { dataDirectory: path.join(temporaryDirectory, 'data') },
      jwtSecret,
      adminToken,
      connectionsMax: connections + 100,
      announceImplementation: true,
    });
    const pid = server.process.pid!;
    console.log(`server up in ${((performance.now() - starting) / 1000).toFixed(1)} s, pid ${pid}, port ${server.port}`);
    const idleMemory = residentMemoryMb(pid);
    // The embedded PostgreSQL's postmaster, a child of the server: its CPU is told apart.
    const database = [...readProcessTable().values()].find((entry) => entry.parentPid === pid && entry.command === 'postgres')?.pid;

    const itemId = '1';
    await adminRequest(server.port, adminToken, 'POST', '/admin/items', {
      id: itemId,
      name: 'Hot item',
      sellerId: '1',
      stock,
      perUserLimit,
    });

    const key = new TextEncoder().encode(jwtSecret);
    const tokens = await Promise.all(
      Array.from({ length: connections }, (_, index) =>
        new SignJWT({ level: 1 }).setProtectedHeader({ alg: 'HS256' }).setSubject(String(100_000 + index)).sign(key),
      ),
    );

    // Connections are dealt round-robin over the threads; the first ones of each thread buy.
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const connecting = performance.now();
    for (let index = 0; index < workerCount; index++) {
      const share = tokens.filter((_, tokenIndex) => tokenIndex % workerCount === index);
      const data: LoadWorkerData = {
        url,
        itemId,
        tokens: share,
        activeConnections: Math.ceil(activeConnections / workerCount),
        watchers: Math.ceil(watchers / workerCount),
        inFlight,
        connectConcurrency: 64,
      };
      workers.push(new Worker(new URL('./support/wsLoad.js', import.meta.url), { workerData: data }));
    }
    const connectedReports = await Promise.all(workers.map(messageOf));
    let held = 0;
    for (const report of connectedReports) {
      if (report.kind !== 'connected') throw new Error(`unexpected ${report.kind} from a load thread`);
      held += report.connections;
      if (report.failures > 0) console.log(`${report.failures} connections failed: ${report.failure}`);
    }
    const connectSeconds = (performance.now() - connecting) / 1000;
    const heldMemory = residentMemoryMb(pid);
    console.log(
      `connections held: ${held} of ${connections}, opened in ${connectSeconds.toFixed(1)} s; ` +
        `server RSS ${heldMemory.rssMb.toFixed(0)} MB (idle before: ${idleMemory.rssMb.toFixed(0)} MB)`,
    );

    const nowMs = performance.timeOrigin + performance.now();
    const measureFromMs = nowMs + 500 + warmupSeconds * 1000;
    const measureUntilMs = measureFromMs + seconds * 1000;
    const start: FromMain = { kind: 'start', measureFromMs, measureUntilMs, stopAtMs: measureUntilMs };
    const doneReports = workers.map(messageOf);
    for (const worker of workers) worker.postMessage(start);

    // Sample the server's memory while the load runs.
    let rssMaxMb = heldMemory.rssMb;
    const sampler = setInterval(() => {
      rssMaxMb = Math.max(rssMaxMb, residentMemoryMb(pid).rssMb);
    }, 200);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureFromMs - (performance.timeOrigin + performance.now()))));
    const metricsAtStart = (await adminRequest(server.port, adminToken, 'GET', '/metrics')) as string;
    const cpuMeter = new CpuMeter([
      { label: 'serverAndDatabase', pid },
      ...(database === undefined ? [] : [{ label: 'database', pid: database }]),
      { label: 'load', pid: 'self' as const },
    ]);
    cpuMeter.begin();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, measureUntilMs - (performance.timeOrigin + performance.now()))));
    const cpuWindow = cpuMeter.end();
    const metricsAfter = (await adminRequest(server.port, adminToken, 'GET', '/metrics')) as string;
    const results = await Promise.all(doneReports);
    clearInterval(sampler);
    const endMemory = residentMemoryMb(pid);
    rssMaxMb = Math.max(rssMaxMb, endMemory.rssMb);
    if (process.env.BENCH_PRINT_HEAP === '1') {
      console.log(metricsAfter.split('\n').filter((line) => /^(nodejs_heap_size|nodejs_external|nodejs_heap_space_size_used|process_resident)/.test(line)).join('\n'));
    }

    let ordersInWindow = 0;
    let ordersTotal = 0;
    let stockPushes = 0;
    let unanswered = 0;
    let closedEarly = 0;
    const rejections: Record<string, number> = {};
    const latencyParts: Float64Array[] = [];
    for (const result of results) {
      if (result.kind !== 'done') throw new Error(`unexpected ${result.kind} from a load thread`);
      ordersInWindow += result.ordersInWindow;
      ordersTotal += result.ordersTotal;
      stockPushes += result.stockPushes;
      unanswered += result.unanswered;
      closedEarly += result.closedEarly;
      latencyParts.push(result.latenciesMs);
      for (const [reason, count] of Object.entries(result.rejections)) rejections[reason] = (rejections[reason] ?? 0) + count;
    }
    const latencies = new Float64Array(latencyParts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of latencyParts) {
      latencies.set(part, offset);
      offset += part.length;
    }
    latencies.sort();
    const sorted = Array.from(latencies);
    const p50Ms = percentile(sorted, 0.5);
    const p99Ms = percentile(sorted, 0.99);
    const p999Ms = percentile(sorted, 0.999);
    const ordersPerSecond = ordersInWindow / seconds;

    const view = (await adminRequest(server.port, adminToken, 'GET', `/items/${itemId}`)) as {
      stock: number;
      available: number;
      reserved: number;
      sold: number;
    };
    const flushes = metricValue(metricsAfter, 'seckill_flush_batch_events_count') - metricValue(metricsAtStart, 'seckill_flush_batch_events_count');
    const flushedEvents = metricValue(metricsAfter, 'seckill_flush_batch_events_sum') - metricValue(metricsAtStart, 'seckill_flush_batch_events_sum');
    const flushSeconds =
      metricValue(metricsAfter, 'seckill_flush_duration_seconds_sum') - metricValue(metricsAtStart, 'seckill_flush_duration_seconds_sum');
    const databaseCpuSeconds = cpuWindow.cpuSeconds.database ?? Number.NaN;
    const cpuSecondsOf = {
      server: cpuWindow.cpuSeconds.serverAndDatabase! - (Number.isNaN(databaseCpuSeconds) ? 0 : databaseCpuSeconds),
      database: databaseCpuSeconds,
      load: cpuWindow.cpuSeconds.load!,
    };
    const cpuShare = (key: keyof typeof cpuSecondsOf): string =>
      Number.isNaN(cpuSecondsOf[key]) ? 'unknown' : `${((cpuSecondsOf[key] / cpuWindow.seconds) * 100).toFixed(0)}%`;

    console.log(`orders acknowledged in the ${seconds} s window: ${ordersInWindow} → ${ordersPerSecond.toFixed(0)} durable orders/s`);
    console.log(
      `latency, send to order: p50 ${p50Ms.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms, p999 ${p999Ms.toFixed(1)} ms (${sorted.length} orders)`,
    );
    console.log(
      `journal: ${flushes} flushes in the window, ${(flushedEvents / Math.max(1, flushes)).toFixed(0)} events per flush on average, ` +
        `${((flushSeconds / Math.max(1, flushes)) * 1000).toFixed(1)} ms per flush`,
    );
    console.log(
      `server RSS: ${heldMemory.rssMb.toFixed(0)} MB holding the connections, ${rssMaxMb.toFixed(0)} MB at most under load ` +
        `(sampled every 200 ms), peak ${endMemory.peakMb.toFixed(0)} MB (VmHWM)`,
    );
    console.log(
      `CPU in the window (100% = one core): server ${cpuShare('server')}, PostgreSQL ${cpuShare('database')}, ` +
        `load generator ${cpuShare('load')}`,
    );
    console.log(`stock pushes received by the ${watchers} watchers: ${stockPushes}`);
    const rejectionText = Object.entries(rejections)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ');
    console.log(`rejections: ${rejectionText === '' ? 'none' : rejectionText}; unanswered: ${unanswered}; closed early: ${closedEarly}`);
    const balanced = view.available + view.reserved + view.sold === view.stock;
    const consistent = view.sold === ordersTotal;
    console.log(
      `check: the item's committed sold figure is ${view.sold}, orders acknowledged ${ordersTotal}: ` +
        `${consistent ? 'equal' : 'DIFFERENT'}; the item ${balanced ? 'balances' : 'DOES NOT BALANCE'}`,
    );

    for (const worker of workers) worker.postMessage({ kind: 'close' } satisfies FromMain);
    await Promise.all(workers.map(messageOf));
    await Promise.all(workers.map((worker) => worker.terminate()));
    workers.length = 0;

    server.process.kill('SIGTERM');
    const exitCode = await server.exited;
    console.log(`server stopped with SIGTERM, exit code ${exitCode}`);
    server = undefined;

    console.log(
      JSON.stringify({
        connections: held,
        users: connections,
        activeConnections,
        inFlightPerConnection: inFlight,
        seconds,
        ordersPerSecond: Math.round(ordersPerSecond),
        p50Ms: Number(p50Ms.toFixed(2)),
        p99Ms: Number(p99Ms.toFixed(2)),
        p999Ms: Number(p999Ms.toFixed(2)),
        serverRssMb: Math.round(rssMaxMb),
        serverRssHoldingMb: Math.round(heldMemory.rssMb),
        serverPeakRssMb: Math.round(endMemory.peakMb),
        meanEventsPerFlush: Math.round(flushedEvents / Math.max(1, flushes)),
        flushes,
        rejected: Object.values(rejections).reduce((sum, count) => sum + count, 0),
        unanswered,
        soldMatchesOrders: consistent,
        cores: cpus.length,
      }),
    );
    if (!consistent || !balanced || unanswered > 0) process.exitCode = 1;
  } finally {
    for (const worker of workers) await worker.terminate();
    if (server !== undefined) {
      server.process.kill('SIGTERM');
      await server.exited;
    }
    await rm(temporaryDirectory, { recursive: true, force: true });
  }
}

await main();
