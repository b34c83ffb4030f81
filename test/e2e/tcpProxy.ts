/**
 * A TCP proxy in front of PostgreSQL for the outage tests: `cut` drops every connection and
 * refuses new ones, as a database that went away does; `freeze` keeps the connections but
 * passes nothing on, as a database that hangs does; `blackHole` also takes new connections and
 * passes nothing on for them, as a network partition does (packets dropped, nothing closed);
 * `restore` lets everything through again.
 */
import net from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  private holding = false;
  /** Connections taken while black-holed, joined to PostgreSQL once traffic flows again. */
  private held: (() => void)[] = [];

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
        upstream.pipe(client);
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
