/**
 * A WebSocket client for the end-to-end tests, on the `ws` package: it records every frame it
 * receives, matches replies to requests by `id`, and reports how the connection closed.
 */
import WebSocket from 'ws';

export type Message = Record<string, unknown> & { type: string };

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** An upgrade the server refused: its HTTP status and body. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

interface Waiter {
  readonly from: number;
  readonly predicate: (message: Message) => boolean;
  readonly resolve: (message: Message) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const waitTimeoutMs = 10_000;

export class TestClient {
  /** Every frame received, in order. */
  readonly messages: Message[] = [];
  /** When each frame of `messages` arrived (performance.now()). */
  readonly arrivals: number[] = [];
  readonly closed: Promise<Closed>;
  /**
   * The last error `ws` reported on the open connection (a reset, a frame it could not read):
   * an abnormal close (1006) says nothing more by itself, so the failure names this.
   */
  error: Error | null = null;
  private waiters: Waiter[] = [];
  private nextId = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('error', (error) => (this.error = error));
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        const cause = this.error === null ? '' : `, after the error: ${this.error.message}`;
        for (const waiter of this.waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`the connection closed (${code} ${reason.toString()}${cause}) while waiting`));
        }
        this.waiters = [];
      });
    });
    socket.on('message', (data, isBinary) => {
      const message = JSON.parse(isBinary ? Buffer.from(data as Buffer).toString() : data.toString()) as Message;
      this.messages.push(message);
      this.arrivals.push(performance.now());
      const index = this.messages.length - 1;
      this.waiters = this.waiters.filter((waiter) => {
        if (index < waiter.from || !waiter.predicate(message)) return true;
        clearTimeout(waiter.timer);
        waiter.resolve(message);
        return false;
      });
    });
  }

  static connect(url: string): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolve(new TestClient(socket)));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => reject(new UpgradeRefused(response.statusCode ?? 0, body)));
      });
      socket.once('error', (error) => reject(error));
    });
  }

  /** A fresh request id. */
  id(prefix = 'request'): string {
    this.nextId += 1;
    return `${prefix}-${this.nextId}`;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Sends a request (an `id` is added when missing) and waits for the reply that echoes its id. */
  request(frame: Record<string, unknown>): Promise<Message> {
    const id = typeof frame.id === 'string' ? frame.id : this.id(String(frame.type));
    const from = this.messages.length;
    this.send({ ...frame, id });
    return this.waitFor((message) => message.id === id && message.type !== 'stock', from);
  }

  /** The first message from index `from` on that satisfies `predicate`, received already or later. */
  waitFor(predicate: (message: Message) => boolean, from = 0, timeoutMs = waitTimeoutMs): Promise<Message> {
    for (let index = from; index < this.messages.length; index++) {
      if (predicate(this.messages[index]!)) return Promise.resolve(this.messages[index]!);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.timer !== timer);
        reject(new Error(`no matching message within ${timeoutMs} ms; received ${JSON.stringify(this.messages.slice(from))}`));
      }, timeoutMs);
      this.waiters.push({ from, predicate, resolve, reject, timer });
    });
  }

  /** The stock pushes received so far, optionally for one item. */
  stockPushes(itemId?: string): Message[] {
    return this.messages.filter((message) => message.type === 'stock' && (itemId === undefined || message.item === itemId));
  }

  close(): Promise<Closed> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
    return this.closed;
  }
}
