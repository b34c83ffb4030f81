/**
 * A minimal Redis connection for the hot path of the Redis contender: it sends commands in RESP
 * and reads integer replies, nothing else. A general client (node-redis: about 27 µs of this
 * process's CPU per EVALSHA, measured in a smoke run on the 2-core machine) made the client,
 * not Redis, the bottleneck, and a comparison with Redis must load Redis as hard as
 * redis-benchmark's C client does. Setup and the stored check use @redis/client.
 *
 * Replies on one connection come in the order of the commands, so a queue of waiters is all
 * the bookkeeping. Commands written in one event-loop turn leave in one write (cork/uncork),
 * as pipelining clients do.
 */
import { connect, type Socket } from 'node:net';

interface Waiter {
  resolve(value: number): void;
  reject(error: Error): void;
}

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(parts: readonly string[]): string {
  let text = `*${parts.length}\r\n`;
  for (const part of parts) text += `$${Buffer.byteLength(part)}\r\n${part}\r\n`;
  return text;
}

/**
 * Splits the integer, simple-string and error replies off the front of `buffer`; returns them
 * and the unread rest. Any other reply type is an error: this connection never asks for one.
 */
export function decodeReplies(buffer: Buffer): { replies: (number | Error)[]; rest: Buffer } {
  const replies: (number | Error)[] = [];
  let start = 0;
  for (;;) {
    const end = buffer.indexOf('\r\n', start);
    if (end < 0) break;
    const line = buffer.toString('latin1', start, end);
    start = end + 2;
    const type = line[0];
    if (type === ':') replies.push(Number(line.slice(1)));
    else if (type === '+') replies.push(0);
    else if (type === '-') replies.push(new Error(line.slice(1)));
    else throw new Error(`unexpected RESP reply: ${line.slice(0, 40)}`);
  }
  return { replies, rest: buffer.subarray(start) };
}

export class RespConnection {
  private readonly waiters: Waiter[] = [];
  private head = 0;
  private unread: Buffer = Buffer.alloc(0);
  private corked = false;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.failAll(error));
    socket.on('close', () => this.failAll(new Error('the Redis connection closed')));
  }

  static open(port: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new RespConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends a command whose reply is an integer. */
  integer(parts: readonly string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      this.socket.write(encodeCommand(parts));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    let decoded: ReturnType<typeof decodeReplies>;
    try {
      decoded = decodeReplies(this.unread.length === 0 ? chunk : Buffer.concat([this.unread, chunk]));
    } catch (error) {
      // The stream can no longer be followed: fail everything waiting, and the connection.
      this.failAll(error as Error);
      this.socket.destroy();
      return;
    }
    const { replies, rest } = decoded;
    this.unread = rest;
    for (const reply of replies) {
      const waiter = this.waiters[this.head++]!;
      if (reply instanceof Error) waiter.reject(reply);
      else waiter.resolve(reply);
    }
    // Drop answered waiters now and then rather than shifting the array on every reply.
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
  }

  private failAll(error: Error): void {
    for (let index = this.head; index < this.waiters.length; index++) this.waiters[index]!.reject(error);
    this.waiters.length = 0;
    this.head = 0;
  }
}
