/**
 * Where the engine's CPU per durable order goes: the in-process engine under a closed-loop load,
 * with Node's CPU profiler on for the measured window only, and the CPU of this process and of
 * PostgreSQL read over the same window. Self time is grouped by concern (the engine's own path,
 * the journal's encoding, the order projection, the load generator, the pg driver, garbage
 * collection), so every µs of the figure is accounted for.
 *
 *   npm run bench:profile
 *   BENCH_SECONDS=5 BENCH_IN_FLIGHT=20000 BENCH_PROJECTION=held npm run bench:profile
 *   BENCH_PENDING_ORDERS_MAX=1 npm run bench:profile   # keeps no orders for read-your-writes: what they cost
 *
 * The last line is one JSON object for machines.
 */
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { createEngine } from '../src/engine.js';
import { withDatabase } from './harness/child.js';
import { CpuMeter, type CpuSubject } from './harness/cpu.js';
import { readPositiveInteger } from './support/measure.js';

const seconds = readPositiveInteger('BENCH_SECONDS', 5);
const inFlight = readPositiveInteger('BENCH_IN_FLIGHT', 20_000);
const projection = process.env.BENCH_PROJECTION === 'held' ? 'held' : 'live';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface AllocationNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocationNode[];
}
interface AllocationProfile {
  head: AllocationNode;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The concern a sampled frame belongs to, by its file. */
function concernOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(idle)' || functionName === '(program)') return 'idle';
  if (url.includes('/node_modules/pg') || url.includes('/node_modules/pg-')) return 'pg driver (protocol, parsing)';
  if (url.includes('/node_modules/nact')) return 'nact (actor runtime)';
  if (url.includes('/src/orders/')) return 'order projection';
  if (url.includes('/src/persistence/')) return 'journal (batching, encoding)';
  if (url.includes('/src/domain/')) return 'decide + evolve';
  if (url.includes('/src/actors/') || url.includes('/src/engine/') || url.includes('/src/sliceRuntime')) return 'engine path (actor shell, routing, replies)';
  if (url.includes('/bench/')) return 'load generator (this bench)';
  if (url === '' || url.startsWith('node:')) return 'node internals (promises, buffers, sockets)';
  return 'other';
}

async function main(): Promise<void> {
  await withDatabase('bench_profile', async (database) => {
    const engine = await createEngine({ databaseUrl: database.url, shards: 0, ...(process.env.BENCH_PENDING_ORDERS_MAX ? { pendingOrdersMax: Number(process.env.BENCH_PENDING_ORDERS_MAX) } : {}) });
    const created = await engine.createItem({ id: '1', name: 'Profiled item', sellerId: '1', stock: 1_000_000_000 });
    if (!created.ok) throw new Error(`creating the item failed: ${created.message}`);
    let nextUser = 1_000_000;
    let orders = 0;
    let counting = false;
    let running = true;
    const buyer = async (): Promise<void> => {
      while (running) {
        const result = await engine.buy({ userId: String(nextUser++) }, { itemId: '1', quantity: 1 });
        if (!result.ok) throw new Error(`a buy was refused: ${result.reason}`);
        if (counting) orders++;
      }
    };
    if (projection === 'held') await engine.orderService.pauseProjection();
    const buyers = Array.from({ length: inFlight }, buyer);
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const subjects: CpuSubject[] = [{ label: 'node', pid: 'self' }];
    if (database.postmasterPid !== null) subjects.push({ label: 'postgres', pid: database.postmasterPid });
    const meter = new CpuMeter(subjects);
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    // Allocation sampling: which functions allocate what the garbage collector then collects.
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 64 * 1024 });
    meter.begin();
    counting = true;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
    counting = false;
    const window = meter.end();
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    const { profile: allocations } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: AllocationProfile };
    session.disconnect();
    running = false;
    await Promise.all(buyers);
    await engine.close();

    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const concerns = new Map<string, number>();
    const functions = new Map<string, number>();
    let sampled = 0;
    for (let index = 0; index < profile.samples.length; index++) {
      const frame = byId.get(profile.samples[index]!)!.callFrame;
      const delta = profile.timeDeltas[index]!;
      sampled += delta;
      const concern = concernOf(frame);
      concerns.set(concern, (concerns.get(concern) ?? 0) + delta);
      if (concern !== 'idle') {
        const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}`;
        functions.set(name, (functions.get(name) ?? 0) + delta);
      }
    }
    const nodeCpu = window.cpuSeconds.node ?? 0;
    const postgresCpu = window.cpuSeconds.postgres ?? Number.NaN;
    const perOrder = (cpuSeconds: number): number => (cpuSeconds * 1e6) / orders;
    // The profile samples the main thread; its busy share is spread over the CPU the process used.
    const busy = sampled - (concerns.get('idle') ?? 0);
    const mainThreadUs = (busy / orders);

    console.log('bench:profile: where the CPU per durable order goes');
    console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} cores, node ${process.version}; load ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`);
    console.log(`load: one item, one slice, ${inFlight} buyers in flight (closed loop), ${seconds} s window, projection ${projection}`);
    console.log(`orders: ${orders} (${Math.round(orders / window.seconds)}/s)`);
    console.log(
      `CPU per order: ${(perOrder(nodeCpu) + perOrder(postgresCpu)).toFixed(2)} µs = node ${perOrder(nodeCpu).toFixed(2)} (main thread ${mainThreadUs.toFixed(2)}, other threads ${(perOrder(nodeCpu) - mainThreadUs).toFixed(2)}) + postgres ${perOrder(postgresCpu).toFixed(2)}`,
    );
    console.log('main thread, µs per order by concern:');
    for (const [concern, time] of [...concerns].sort((left, right) => right[1] - left[1])) {
      if (concern === 'idle') continue;
      console.log(`  ${(time / orders).toFixed(2).padStart(6)}  ${((time / busy) * 100).toFixed(1).padStart(5)}%  ${concern}`);
    }
    console.log('main thread, top functions (self time):');
    for (const [name, time] of [...functions].sort((left, right) => right[1] - left[1]).slice(0, 25)) {
      console.log(`  ${(time / orders).toFixed(3).padStart(7)} µs  ${((time / busy) * 100).toFixed(1).padStart(5)}%  ${name}`);
    }
    const allocated = new Map<string, number>();
    const walk = (node: AllocationNode): void => {
      const name = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.split('/').slice(-2).join('/')}:${node.callFrame.lineNumber + 1}`;
      allocated.set(name, (allocated.get(name) ?? 0) + node.selfSize);
      for (const child of node.children) walk(child);
    };
    walk(allocations.head);
    const allocatedBytes = [...allocated.values()].reduce((sum, bytes) => sum + bytes, 0);
    console.log(`allocated: about ${Math.round(allocatedBytes / orders)} bytes per order (sampled); top allocating functions:`);
    for (const [name, bytes] of [...allocated].sort((left, right) => right[1] - left[1]).slice(0, 20)) {
      console.log(`  ${String(Math.round(bytes / orders)).padStart(6)} B  ${name}`);
    }
    console.log(
      JSON.stringify({
        bytesAllocatedPerOrder: Math.round(allocatedBytes / orders),
        ordersPerSecond: Math.round(orders / window.seconds),
        cpuUsPerOrder: Number((perOrder(nodeCpu) + perOrder(postgresCpu)).toFixed(2)),
        nodeUsPerOrder: Number(perOrder(nodeCpu).toFixed(2)),
        mainThreadUsPerOrder: Number(mainThreadUs.toFixed(2)),
        postgresUsPerOrder: Number(perOrder(postgresCpu).toFixed(2)),
        concerns: Object.fromEntries([...concerns].filter(([concern]) => concern !== 'idle').map(([concern, time]) => [concern, Number((time / orders).toFixed(3))])),
        projection,
        inFlight,
        seconds,
      }),
    );
  });
}

await main();
