/**
 * The server's life: it builds the shared context, registers the routes and the WebSocket
 * sessions on one uWebSockets.js app, listens, and shuts down in three steps (stop accepting,
 * drain the requests in flight, close the connections with 1001).
 */
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { defaultLimits, type EdgeLimits } from '../config.js';
import { UserAuthenticator } from '../edge/auth.js';
import { listenExclusively } from '../edge/listen.js';
import { uws, uwsImplementation, type UwsImplementation } from '../edge/uws.js';
import type { Engine } from '../engine.js';
import { Metrics } from '../metrics.js';
import { registerAdminRoutes } from './adminRoutes.js';
import { Admission, type ServerContext } from './context.js';
import { DashboardFeed } from './dashboardFeed.js';
import { registerDashboardRoutes } from './dashboardRoutes.js';
import { json } from './http.js';
import { InFlightRequests } from './inFlight.js';
import { registerOperationalRoutes } from './operationalRoutes.js';
import { registerUserRoutes } from './userRoutes.js';
import { WebSocketSessions } from './webSocket.js';

export interface ServerOptions {
  readonly engine: Engine;
  /** The HS256 secret user tokens are signed with. */
  readonly jwtSecret: string;
  readonly adminToken: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly limits?: Partial<EdgeLimits>;
  /** The clock of the challenge TTLs, the rate limits, the JWT `exp` checks and the push coalescing. */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Pass the same Metrics whose `flush` is the engine's `onFlush`. */
  readonly metrics?: Metrics;
}

export interface SeckillServer {
  readonly host: string;
  readonly port: number;
  /** http://HOST:PORT */
  readonly httpUrl: string;
  /** ws://HOST:PORT/ws */
  readonly wsUrl: string;
  readonly implementation: UwsImplementation;
  readonly metrics: Metrics;
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Requests handed to the engine and not answered yet. */
  readonly inFlight: number;
  /** Closes the listening socket; open connections stay, and new requests are answered `unavailable`. */
  stopAccepting(): void;
  /** Resolves true once every in-flight request is answered, false if `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean>;
  /**
   * Closes every connection with 1001 and stops the server. Resolves once every connection has
   * closed, or after `timeoutMs` (default 2 s): a client slow to read still gets the replies
   * queued for it and then its 1001, rather than a cut connection (1006), unless it takes
   * longer than that.
   */
  closeConnections(timeoutMs?: number): Promise<void>;
  /** All three, in order: stop accepting, drain (up to `graceMs`), close the connections. */
  close(graceMs?: number): Promise<void>;
}

/** How long `closeConnections` waits for clients to read their last replies and the 1001. */
const closeWaitMsDefault = 2_000;

export async function startServer(options: ServerOptions): Promise<SeckillServer> {
  const server = new Server(options);
  await server.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return server;
}

class Server implements SeckillServer {
  readonly implementation = uwsImplementation();
  readonly metrics: Metrics;
  host = '';
  port = 0;
  private readonly context: ServerContext;
  private readonly app: TemplatedApp;
  private readonly sessions: WebSocketSessions;
  private readonly dashboard: DashboardFeed;
  private readonly requests = new InFlightRequests();
  private listenSocket: us_listen_socket | null = null;
  private readonly admission = new Admission();
  private stopped = false;

  constructor(options: ServerOptions) {
    const clock = options.clock ?? systemClock;
    const engine = options.engine;
    this.metrics = options.metrics ?? new Metrics();
    this.context = {
      engine,
      limits: { ...defaultLimits, ...options.limits },
      clock,
      logger: options.logger ?? pino({ level: 'silent' }),
      metrics: this.metrics,
      auth: new UserAuthenticator(options.jwtSecret, clock),
      adminToken: options.adminToken,
      inFlight: this.requests,
      admission: this.admission,
    };
    this.metrics.watchJournalBacklog(() => (engine.isClosed ? 0 : engine.journalBacklog));
    this.metrics.watchInFlight(() => this.requests.count);
    this.metrics.watchProjection(() =>
      engine.isClosed
        ? { lagEvents: 0, pendingOrders: 0 }
        : { lagEvents: engine.orderService.projectionLagEvents, pendingOrders: engine.orderService.pendingOrders },
    );
    this.app = uws.App();
    this.sessions = new WebSocketSessions(this.app, this.context);
    registerOperationalRoutes(this.app, this.context);
    registerUserRoutes(this.app, this.context);
    registerAdminRoutes(this.app, this.context);
    this.dashboard = new DashboardFeed(this.context, () => this.sessions.count);
    registerDashboardRoutes(this.app, this.context, this.dashboard);
    this.app.any('/*', (response) => json(response, 404, { error: 'not_found' }));
  }

  get connections(): number {
    return this.sessions.count;
  }

  get inFlight(): number {
    return this.requests.count;
  }

  get httpUrl(): string {
    return `http://${this.urlHost()}:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://${this.urlHost()}:${this.port}/ws`;
  }

  async listen(host: string, port: number): Promise<void> {
    let listenSocket: us_listen_socket;
    try {
      listenSocket = await listenExclusively(this.app, host, port);
    } catch (error) {
      this.sessions.stop();
      this.dashboard.stop();
      throw error;
    }
    this.listenSocket = listenSocket;
    this.host = host;
    this.port = uws.us_socket_local_port(listenSocket as never);
    this.sessions.startCongestionChecks();
  }

  stopAccepting(): void {
    this.admission.close();
    if (this.listenSocket !== null) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  drain(timeoutMs: number): Promise<boolean> {
    return this.requests.drain(timeoutMs);
  }

  async closeConnections(timeoutMs = closeWaitMsDefault): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopAccepting();
    this.dashboard.stop();
    await this.sessions.closeAll(timeoutMs);
    // Also closes idle HTTP keep-alive connections, so nothing keeps the process alive. The
    // native build has `close` (its type declarations lag behind).
    (this.app as TemplatedApp & { close?: () => void }).close?.();
  }

  async close(graceMs = 10_000): Promise<void> {
    this.stopAccepting();
    const drained = await this.drain(graceMs);
    if (!drained) this.context.logger.warn({ inFlight: this.requests.count }, 'requests still in flight after the shutdown grace period');
    await this.closeConnections();
  }

  private urlHost(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }
}
