/**
 * A bare WebSocket client on a TCP socket, for the backpressure tests: unlike the `ws` client it
 * can stop reading (`pause`) so that the server's send buffer for it fills, and it reports the
 * close frame it finally reads. Frames it sends are masked text frames, as RFC 6455 requires.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export class RawWebSocket {
  readonly messages: Record<string, unknown>[] = [];
  closeCode: number | null = null;
  /** Bytes of WebSocket payload read so far. */
  bytesRead = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private listeners: (() => void)[] = [];
  readonly ended: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined);
  }

  static connect(port: number, path: string): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const key = randomBytes(16).toString('base64');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      let head = Buffer.alloc(0);
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHead);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) {
          reject(new Error(`upgrade refused: ${status}`));
          socket.destroy();
          return;
        }
        const client = new RawWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) client.receive(rest);
        resolve(client);
      };
      socket.on('data', onHead);
    });
  }

  send(text: string): void {
    this.sendBytes(Buffer.from(text));
  }

  /** Sends `payload` as one masked text frame, whether or not it is valid UTF-8. */
  sendBytes(payload: Buffer): void {
    const mask = randomBytes(4);
    const header =
      payload.length < 126
        ? Buffer.from([0x81, 0x80 | payload.length])
        : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]!));
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  /** Stops reading: the kernel's buffers, then the server's buffer for this connection, fill up. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves once `predicate` holds, checked after every frame read. */
  until(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`condition not met within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((listener) => listener !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) break;
      const opcode = this.buffer[0]! & 0x0f;
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) break;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) break;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) break;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      this.bytesRead += length;
      if (opcode === 0x1) this.messages.push(JSON.parse(payload.toString()) as Record<string, unknown>);
      else if (opcode === 0x8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    }
    for (const listener of [...this.listeners]) listener();
  }
}
