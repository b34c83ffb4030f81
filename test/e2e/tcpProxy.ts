/**
 * A TCP proxy in front of PostgreSQL for the outage tests: `cut` drops every connection and
 * refuses new ones, as a database that went away does; `freeze` keeps the connections but
 * passes nothing on, as a database that hangs does; `blackHole` also takes new connections and
 * passes nothing on for them, as a network partition does (packets dropped, nothing closed);
 * `delay` passes everything on, late, as a slow or distant database does; `restore` lets
 * everything through again.
 */
import net from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  private holding = false;
  /** Connections taken while black-holed, joined to PostgreSQL once traffic flows again. */
  private held: (() => void)[] = [];
  /** How late PostgreSQL's answers are passed on (see `delay`). */
  private delayMs = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => {
      if (proxy === undefined || !proxy.open) {
        client.destroy();
        return;
      }
      const join = (): void => {
        if (client.destroyed) return;
        const upstream = net.connect(targetPort, targetHost);
        for (const socket of [client, upstream]) {
          proxy!.sockets.add(socket);
          socket.on('close', () => proxy?.sockets.delete(socket));
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        proxy!.passOn(upstream, client);
        client.resume();
      };
      if (!proxy.holding) {
        join();
        return;
      }
      client.pause();
      client.on('error', () => client.destroy());
      proxy.held.push(join);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** A PostgreSQL URL like `url` that goes through this proxy. */
  route(url: string): string {
    const routed = new URL(url);
    routed.hostname = '127.0.0.1';
    routed.port = String(this.port);
    return routed.toString();
  }

  /** PostgreSQL's answers reach the client `delayMs` late, in order; 0 passes them at once. */
  delay(delayMs: number): void {
    this.delayMs = delayMs;
  }

  /** Upstream to client, each chunk held until `delayMs` after it arrived, in arrival order. */
  private passOn(upstream: net.Socket, client: net.Socket): void {
    const queue: { chunk: Buffer; dueAt: number }[] = [];
    let timer: NodeJS.Timeout | null = null;
    const pump = (): void => {
      timer = null;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.dueAt <= now) client.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.dueAt - now);
    };
    upstream.on('data', (chunk: Buffer) => {
      if (this.delayMs === 0 && queue.length === 0) {
        client.write(chunk);
        return;
      }
      queue.push({ chunk, dueAt: Date.now() + this.delayMs });
      timer ??= setTimeout(pump, this.delayMs);
    });
    upstream.on('end', () => {
      for (const { chunk } of queue.splice(0)) client.write(chunk);
      client.end();
    });
  }

  freeze(): void {
    for (const socket of this.sockets) socket.pause();
  }

  cut(): void {
    this.open = false;
    for (const socket of this.sockets) socket.destroy();
  }

  /** Nothing passes, on the connections there are and on new ones, and nothing is closed. */
  blackHole(): void {
    this.holding = true;
    this.freeze();
  }

  restore(): void {
    this.open = true;
    this.holding = false;
    for (const socket of this.sockets) socket.resume();
    const held = this.held;
    this.held = [];
    for (const join of held) join();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
