/**
 * Contender: the design most flash-sale systems run. A Lua script in Redis checks the stock,
 * decrements it and records the order (a hash field per order id) in one atomic step. Its
 * argument after the settings picks the durability:
 *
 * - `always`: `appendonly yes`, `appendfsync always`: Redis fsyncs its append-only file before
 *   it answers the commands of each event-loop turn (its group commit). After the run the
 *   server is killed with SIGKILL and started again from that file, and the check reads what
 *   came back: what a crash would have left.
 * - `memory`: no append-only file and no snapshots. A crash loses every order; the check reads
 *   the live server's memory, the only store it has.
 *
 * The load comes from this process over BENCH_REDIS_CLIENTS connections, as redis-benchmark's
 * `-c`, each speaking RESP through the lean RespConnection; setup and the check use
 * @redis/client (node-redis, kept by Redis itself, no dependencies of its own). redis-benchmark
 * would load Redis from C too, but it cannot send at a fixed rate for the latency run, nor say
 * which orders it was told succeeded, which the check needs. The process's CPU (the client) and
 * redis-server's are reported apart.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@redis/client';
import { contenderMain } from '../harness/child.js';
import { CpuMeter } from '../harness/cpu.js';
import { closedLoop, openLoop, sellOut, type Attempt, type PlaceOrder } from '../harness/loops.js';
import { countMissing, cpuFigures, halfOf, latencyFigures, loadNotes, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';
import { RespConnection } from './respConnection.js';

const items = { closedLoop: '1', openLoop: '2', sellOut: '3' } as const;
const unlimitedStock = 1_000_000_000;

/** KEYS: the item's stock, the item's orders. ARGV: order id, user id, quantity. */
const checkAndDecrement = `
local quantity = tonumber(ARGV[3])
local available = tonumber(redis.call('GET', KEYS[1]) or '0')
if available < quantity then return 0 end
redis.call('DECRBY', KEYS[1], quantity)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`;

/** A client as this module makes it: the default modules, RESP3. */
function makeClient(port: number) {
  return createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
}

type RedisClient = ReturnType<typeof makeClient>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface RunningRedis {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
}

function startRedis(directory: string, port: number, durability: 'always' | 'memory'): RunningRedis {
  const persistence = durability === 'always' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', directory, '--save', '', '--logfile', path.join(directory, 'redis.log'), ...persistence],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { process: child, exited };
}

async function connect(port: number): Promise<RedisClient> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = makeClient(port);
    client.on('error', () => undefined);
    try {
      await client.connect();
      // While it loads its append-only file, Redis answers LOADING; wait until it serves.
      await client.ping();
      return client;
    } catch (error) {
      await client.destroy();
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function storedOrders(client: RedisClient, itemId: string): Promise<Set<string>> {
  return new Set(await client.hKeys(`orders:${itemId}`));
}

async function run(settings: BenchSettings): Promise<ContenderResult> {
  const durability = process.argv[3] === 'always' ? 'always' : process.argv[3] === 'memory' ? 'memory' : undefined;
  if (durability === undefined) throw new Error(`the durability must be always or memory, got ${process.argv[3]}`);
  const version = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-bench-redis-'));
  const port = await freePort();
  let redis = startRedis(directory, port, durability);
  const clients: RedisClient[] = [];
  const connections: RespConnection[] = [];
  try {
    const first = await connect(port);
    clients.push(first);
    for (let index = 0; index < settings.redisClients; index++) connections.push(await RespConnection.open(port));
    const sha = await first.scriptLoad(checkAndDecrement);
    await first.mSet([
      [`stock:${items.closedLoop}`, String(unlimitedStock)],
      [`stock:${items.openLoop}`, String(unlimitedStock)],
      [`stock:${items.sellOut}`, String(settings.sellOutStock)],
    ]);
    let nextOrder = 1;
    let nextConnection = 0;
    const buyer = (itemId: string): PlaceOrder => async (): Promise<Attempt> => {
      const orderId = String(nextOrder++);
      const connection = connections[nextConnection++ % connections.length]!;
      const taken = await connection.integer(['EVALSHA', sha, '2', `stock:${itemId}`, `orders:${itemId}`, orderId, orderId, '1']);
      return taken === 1 ? { kind: 'order', orderId } : { kind: 'refused', reason: 'sold_out' };
    };

    const maximum = await closedLoop({
      placeOrder: buyer(items.closedLoop),
      concurrency: settings.redisClients,
      warmupSeconds: settings.warmupSeconds,
      seconds: settings.seconds,
      meter: new CpuMeter([
        { label: 'node', pid: 'self' },
        { label: 'redis', pid: redis.process.pid! },
      ]),
    });
    const ordersPerSecond = maximum.ordersInWindow / maximum.windowSeconds;
    const latency = await openLoop({ placeOrder: buyer(items.openLoop), ratePerSecond: halfOf(ordersPerSecond), seconds: settings.latencySeconds });
    const soldOut = await sellOut(buyer(items.sellOut), settings.redisClients);
    for (const connection of connections) connection.close();
    await Promise.all(clients.map((client) => client.destroy()));
    clients.length = 0;

    if (durability === 'always') {
      // What a crash leaves: kill without warning, start again from the append-only file.
      redis.process.kill('SIGKILL');
      await redis.exited;
      redis = startRedis(directory, port, durability);
    }
    const reader = await connect(port);
    clients.push(reader);
    const closedStored = await storedOrders(reader, items.closedLoop);
    const openStored = await storedOrders(reader, items.openLoop);
    const sellOutStored = await storedOrders(reader, items.sellOut);
    const sellOutLeft = Number(await reader.get(`stock:${items.sellOut}`));
    return {
      name: `redis-${durability}`,
      title: durability === 'always' ? 'Redis + Lua, appendfsync always' : 'Redis + Lua, no persistence',
      ordersPerSecond,
      windowSeconds: maximum.windowSeconds,
      cpu: cpuFigures(maximum.cpu!, maximum.ordersInWindow, 'node', 'redis'),
      latency: latencyFigures(latency),
      batch: null,
      check: {
        method:
          durability === 'always'
            ? 'the order hashes and stock keys after SIGKILL and a restart from the append-only file'
            : "the order hashes and stock keys in the live server's memory (a crash would lose them all)",
        acknowledged: maximum.acknowledged.length + latency.acknowledged.length + soldOut.acknowledged.length,
        stored: closedStored.size + openStored.size + sellOutStored.size,
        lostAcknowledgements:
          countMissing(maximum.acknowledged, closedStored) + countMissing(latency.acknowledged, openStored) + countMissing(soldOut.acknowledged, sellOutStored),
        oversold: Math.max(0, sellOutStored.size - settings.sellOutStock) + Math.max(0, -sellOutLeft),
        sellOutStock: settings.sellOutStock,
        sellOutSold: sellOutStored.size,
      },
      conditions: {
        clients: `${settings.redisClients} connections from this process, RESP pipelined per event-loop turn`,
        processCpu: 'the client: RESP encoding, the Lua call, reply matching',
        redis: version,
        appendonly: durability === 'always' ? 'yes' : 'no',
        appendfsync: durability === 'always' ? 'always' : 'n/a',
        save: '"" (no snapshots)',
        script: 'EVALSHA: GET stock; if enough: DECRBY stock, HSET orders id user',
      },
      notes: [
        ...(durability === 'memory' ? ['not durable: acknowledged orders live only in memory until a snapshot nobody takes'] : []),
        ...loadNotes({ maximum, latency, sellOut: soldOut }),
      ],
    };
  } finally {
    for (const connection of connections) connection.close();
    await Promise.all(clients.map((client) => client.destroy()));
    redis.process.kill('SIGKILL');
    await redis.exited;
    await rm(directory, { recursive: true, force: true });
  }
}

contenderMain(run);
