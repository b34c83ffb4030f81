/**
 * One load-generator thread of bench/ws.ts: holds a share of the WebSocket connections (the
 * `ws` package as the client) and runs closed-loop buyers on them. Each active connection
 * keeps `inFlight` `buy` requests outstanding; every `order` reply, which the server sends only
 * after the order committed, starts the next request on that connection.
 *
 * Latency is measured from just before `send` to the arrival of the `order` reply, for requests
 * sent inside the measurement window; an order counts when its reply arrives inside the window.
 */
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

export interface LoadWorkerData {
  readonly url: string;
  readonly itemId: string;
  /** One token per connection of this thread. */
  readonly tokens: readonly string[];
  /** How many of this thread's connections buy; the others only hold (and watch, if asked). */
  readonly activeConnections: number;
  /** How many of this thread's connections subscribe to the item's stock pushes. */
  readonly watchers: number;
  readonly inFlight: number;
  /** Handshakes in progress at once while connecting. */
  readonly connectConcurrency: number;
  /** Also report the id of every order acknowledged, for a check against the store (bench/run.ts). */
  readonly collectOrderIds?: boolean;
}

export type FromMain =
  | { readonly kind: 'start'; readonly measureFromMs: number; readonly measureUntilMs: number; readonly stopAtMs: number }
  | { readonly kind: 'close' };

export type FromWorker =
  | { readonly kind: 'connected'; readonly connections: number; readonly failures: number; readonly failure?: string }
  | {
      readonly kind: 'done';
      readonly ordersInWindow: number;
      readonly ordersTotal: number;
      readonly rejections: Record<string, number>;
      readonly latenciesMs: Float64Array;
      readonly stockPushes: number;
      readonly unanswered: number;
      readonly closedEarly: number;
      /** Every acknowledged order's id, when `collectOrderIds` was asked for. */
      readonly orderIds?: string[];
    }
  | { readonly kind: 'closed' };

/** Milliseconds on a clock shared by all threads of the process. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Buyer {
  readonly socket: WebSocket;
  readonly sentAt: Map<string, number>;
  next: number;
}

async function run(): Promise<void> {
  const data = workerData as LoadWorkerData;
  const port = parentPort!;
  const buyers: Buyer[] = [];
  let failures = 0;
  let failure: string | undefined;
  let closedEarly = 0;
  let stockPushes = 0;
  let closing = false;

  // Connect, a bounded number of handshakes at a time.
  let nextToken = 0;
  const connectOne = async (): Promise<void> => {
    while (nextToken < data.tokens.length) {
      const index = nextToken++;
      try {
        const socket = await new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`${data.url}?token=${data.tokens[index]}`, { perMessageDeflate: false });
          socket.once('open', () => resolve(socket));
          socket.once('error', reject);
          socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
        });
        socket.on('close', () => {
          if (!closing) closedEarly++;
        });
        socket.on('error', () => undefined);
        buyers[index] = { socket, sentAt: new Map(), next: 0 };
      } catch (error) {
        failures++;
        failure ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: data.connectConcurrency }, connectOne));
  const connected = buyers.filter((buyer) => buyer !== undefined);
  port.postMessage({ kind: 'connected', connections: connected.length, failures, failure } satisfies FromWorker);

  const start = await new Promise<Extract<FromMain, { kind: 'start' }>>((resolve) => {
    port.once('message', (message: FromMain) => {
      if (message.kind === 'start') resolve(message);
    });
  });

  let ordersInWindow = 0;
  let ordersTotal = 0;
  const rejections: Record<string, number> = {};
  const orderIds: string[] = [];
  let latencies = new Float64Array(1 << 16);
  let latencyCount = 0;
  let stopped = false;
  let outstanding = 0;
  let allAnswered: (() => void) | undefined;

  const send = (buyer: Buyer): void => {
    const id = String(buyer.next++);
    buyer.sentAt.set(id, nowMs());
    outstanding++;
    buyer.socket.send(`{"type":"buy","id":"${id}","item":"${data.itemId}","qty":1}`);
  };

  connected.forEach((buyer, index) => {
    const active = index < data.activeConnections;
    buyer.socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as { type: string; id?: string; reason?: string; orderId?: string };
      if (message.type === 'stock') {
        stockPushes++;
        return;
      }
      if (message.type === 'subscribed') return;
      const sentAt = buyer.sentAt.get(message.id!);
      if (sentAt === undefined) return;
      buyer.sentAt.delete(message.id!);
      outstanding--;
      const arrived = nowMs();
      if (message.type === 'order') {
        ordersTotal++;
        if (data.collectOrderIds === true) orderIds.push(message.orderId!);
        if (arrived >= start.measureFromMs && arrived < start.measureUntilMs) ordersInWindow++;
        if (sentAt >= start.measureFromMs && arrived < start.measureUntilMs) {
          if (latencyCount === latencies.length) {
            const grown = new Float64Array(latencies.length * 2);
            grown.set(latencies);
            latencies = grown;
          }
          latencies[latencyCount++] = arrived - sentAt;
        }
      } else {
        const reason = message.reason ?? message.type;
        rejections[reason] = (rejections[reason] ?? 0) + 1;
      }
      if (!stopped && nowMs() < start.stopAtMs) send(buyer);
      else if (outstanding === 0) allAnswered?.();
    });
    if (index < data.watchers) {
      buyer.socket.send(`{"type":"subscribe","id":"watch","items":["${data.itemId}"]}`);
    }
    if (active) {
      const delay = Math.max(0, start.measureFromMs - 1_000 - nowMs());
      // Buyers start during the warm-up second, spread out so they do not all send at once.
      setTimeout(() => {
        for (let request = 0; request < data.inFlight; request++) send(buyer);
      }, delay + (index % 100) * 5);
    }
  });

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, start.stopAtMs - nowMs())));
  stopped = true;
  // Wait for the replies still on their way (each was sent before the stop), up to 15 s.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      allAnswered = resolve;
      setTimeout(resolve, 15_000);
    });
  }
  const result = latencies.slice(0, latencyCount);
  port.postMessage(
    {
      kind: 'done',
      ordersInWindow,
      ordersTotal,
      rejections,
      latenciesMs: result,
      stockPushes,
      unanswered: outstanding,
      closedEarly,
      ...(data.collectOrderIds === true ? { orderIds } : {}),
    } satisfies FromWorker,
    [result.buffer],
  );

  await new Promise<void>((resolve) => {
    port.once('message', (message: FromMain) => {
      if (message.kind === 'close') resolve();
    });
  });
  closing = true;
  await Promise.all(
    connected.map(
      (buyer) =>
        new Promise<void>((resolve) => {
          if (buyer.socket.readyState === WebSocket.CLOSED) return resolve();
          buyer.socket.once('close', () => resolve());
          buyer.socket.close(1000);
          setTimeout(() => {
            buyer.socket.terminate();
            resolve();
          }, 5_000);
        }),
    ),
  );
  port.postMessage({ kind: 'closed' } satisfies FromWorker);
}

await run();
