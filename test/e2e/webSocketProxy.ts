/**
 * A TCP proxy in front of the server's port, as a load balancer is in a deployment: clients
 * keep one address while the server behind it restarts on another port (`retarget`), and it
 * can lose one reply: armed with a text, it drops the connection instead of passing on the
 * first server frame that contains it, as a network that fails after the server committed and
 * answered. Server frames are not masked, so their JSON can be matched in the raw bytes; the
 * client's frames are, so the proxy matches replies, never requests.
 */
import net from 'node:net';

export class WebSocketProxy {
  private readonly sockets = new Set<net.Socket>();
  private armedWith: string | null = null;
  /** Connections dropped on a matching reply so far. */
  dropped = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<WebSocketProxy> {
    let proxy: WebSocketProxy | undefined;
    const server = net.createServer((client) => proxy!.forward(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new WebSocketProxy(server, (server.address() as net.AddressInfo).port, targetPort);
    return proxy;
  }

  /** The WebSocket URL of the server through this proxy. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Sends new connections to another port from now on. */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Drops the connection that would carry the next server frame containing `text`. */
  dropNextReplyContaining(text: string): void {
    this.armedWith = text;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private forward(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = [client, upstream];
    for (const socket of pair) {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        pair.forEach((each) => each.destroy());
      });
      socket.on('error', () => pair.forEach((each) => each.destroy()));
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const armed = this.armedWith;
      if (armed !== null && chunk.includes(armed)) {
        this.armedWith = null;
        this.dropped += 1;
        pair.forEach((each) => each.destroy());
        return;
      }
      client.write(chunk);
    });
  }
}
