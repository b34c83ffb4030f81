/**
 * The real server (`dist/src/cli.js serve`, as `npm start` runs it) as a child of the WebSocket
 * contender, on the PostgreSQL database it is given, with its admin API and metrics, and its
 * WebSocket clients. bench/ws.ts and bench/moment.ts start the server the same way (bench/support/serverChild.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import type { Attempt, PlaceOrder } from '../harness/loops.js';
import { startServerChild } from '../support/serverChild.js';

const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface BenchServer {
  readonly process: ChildProcess;
  readonly port: number;
  readonly jwtSecret: string;
  readonly adminToken: string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts the server with this process's V8 flags, which the orchestrator set to npm start's.
 * `environment` adds to or overrides the server's environment (SECKILL_REHEARSAL_BUYERS, say).
 */
export async function startServer(databaseUrl: string, connectionsMax: number, environment: Readonly<Record<string, string>> = {}): Promise<BenchServer> {
  const jwtSecret = randomBytes(32).toString('base64url');
  const adminToken = randomBytes(24).toString('base64url');
  const child = await startServerChild({
    projectDirectory,
    nodeFlags: process.execArgv,
    database: { url: databaseUrl },
    jwtSecret,
    adminToken,
    connectionsMax,
    environment,
  });
  return { ...child, jwtSecret, adminToken };
}

export async function adminRequest(server: BenchServer, method: string, route: string, body?: unknown): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${server.port}${route}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text}`);
  return text;
}

/** The journal's flush counters from /metrics: batches and the events in them, so far. */
export async function flushCounters(server: BenchServer): Promise<{ flushes: number; events: number }> {
  const metrics = await adminRequest(server, 'GET', '/metrics');
  const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
  return { flushes: value('seckill_flush_batch_events_count'), events: value('seckill_flush_batch_events_sum') };
}

export function userTokens(server: BenchServer, count: number, firstUserId: number): Promise<string[]> {
  const key = new TextEncoder().encode(server.jwtSecret);
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      new SignJWT({ level: 1 }).setProtectedHeader({ alg: 'HS256' }).setSubject(String(firstUserId + index)).sign(key),
    ),
  );
}

/**
 * WebSocket connections held in this thread, one user each, over which `buyer` places orders
 * round-robin; replies are matched to requests by id. For the open loop and the sell-out,
 * whose rates one thread keeps up with; the closed loop uses bench/support/wsLoad.ts threads.
 */
export class BuyerConnections {
  private readonly pending = new Map<string, (attempt: Attempt) => void>();
  private nextRequest = 0;
  private nextSocket = 0;

  private constructor(private readonly sockets: WebSocket[]) {
    for (const socket of sockets) {
      socket.on('message', (raw: Buffer) => {
        const message = JSON.parse(raw.toString()) as { type: string; id?: string; orderId?: string; reason?: string };
        const settle = message.id === undefined ? undefined : this.pending.get(message.id);
        if (settle === undefined) return;
        this.pending.delete(message.id!);
        settle(message.type === 'order' ? { kind: 'order', orderId: message.orderId! } : { kind: 'refused', reason: message.reason ?? message.type });
      });
    }
  }

  static async open(server: BenchServer, tokens: readonly string[], concurrency = 64): Promise<BuyerConnections> {
    const sockets: WebSocket[] = [];
    let next = 0;
    const connectOne = async (): Promise<void> => {
      while (next < tokens.length) {
        const token = tokens[next++]!;
        sockets.push(
          await new Promise<WebSocket>((resolve, reject) => {
            const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${token}`, { perMessageDeflate: false });
            socket.once('open', () => resolve(socket));
            socket.once('error', reject);
          }),
        );
      }
    };
    await Promise.all(Array.from({ length: concurrency }, connectOne));
    for (const socket of sockets) socket.on('error', () => undefined);
    return new BuyerConnections(sockets);
  }

  /**
   * Places one `buy` per call, on the next connection. With `keyed`, each frame carries an
   * idempotency key of its own, 32 hex digits as the client library sends by default (src/client/).
   */
  buyer(itemId: string, keyed = false): PlaceOrder {
    return () =>
      new Promise<Attempt>((resolve, reject) => {
        const socket = this.sockets[this.nextSocket++ % this.sockets.length]!;
        if (socket.readyState !== WebSocket.OPEN) return reject(new Error('a buyer connection closed'));
        const id = String(this.nextRequest++);
        this.pending.set(id, resolve);
        socket.send(
          keyed
            ? `{"type":"buy","id":"${id}","item":"${itemId}","qty":1,"idempotencyKey":"${randomBytes(16).toString('hex')}"}`
            : `{"type":"buy","id":"${id}","item":"${itemId}","qty":1}`,
        );
      });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === WebSocket.CLOSED) return resolve();
            socket.once('close', () => resolve());
            socket.close(1000);
            setTimeout(() => {
              socket.terminate();
              resolve();
            }, 5_000).unref();
          }),
      ),
    );
  }
}
