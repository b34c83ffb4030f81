/**
 * The HTTP and WebSocket server of shared/PROTOCOL.md, on uWebSockets.js: a thin adapter over
 * the engine. It parses, validates, authenticates, rate-limits, routes and replies; every
 * business decision (stock, limits, sale window, eligibility, blocklist, tokens) is the
 * engine's. The edge filters that need no database live in src/edge/: the JWT check, the
 * arithmetic challenge, the rate limits and the coalescing of stock pushes.
 *
 * What it promises:
 * - `reserved`, `order` and `released` are sent only when the engine's promise resolves, which
 *   is after the change committed to PostgreSQL.
 * - Every request frame gets exactly one reply (or the connection is closed with a documented
 *   code, see `closeCodes`). A malformed frame is answered `invalid` and the connection stays.
 * - A slow reader never slows anyone else: its stock pushes stop while more than
 *   `stockPushBufferedBytesMax` bytes wait for it and resume with the latest figures; replies
 *   are never dropped, and a connection with more than `wsBufferedBytesMax` bytes waiting is
 *   closed with 4408.
 * - Reads (GET /items/:id, stock pushes) come from the engine's memory, never the database.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { systemClock, type Clock } from './clock.js';
import { defaultLimits, type EdgeLimits } from './config.js';
import { reject, type Rejection, type RejectionReason } from './domain/reasons.js';
import type { Engine, OrderView } from './engine.js';
import { ChallengeBook } from './edge/challenge.js';
import { UserAuthenticator, bearerToken, secretsEqual, type UserIdentity } from './edge/auth.js';
import {
  RequestParser,
  challengeMessage,
  closeCodes,
  orderMessage,
  ordersMessage,
  rejectedMessage,
  releasedMessage,
  requestTypeOf,
  reservedMessage,
  subscribedMessage,
  unsubscribedMessage,
  usableId,
  type Request,
} from './edge/protocol.js';
import { KeyedRateLimiter, TokenBucket } from './edge/rateLimit.js';
import { StockFeed } from './edge/stockFeed.js';
import { uws, uwsImplementation, type UwsImplementation } from './edge/uws.js';
import { listenExclusively } from './edge/listen.js';
import { decimalId, qualify, type Buyer } from './items.js';
import { Metrics } from './metrics.js';

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
  /** Closes every connection with 1001 and stops the server. */
  closeConnections(): void;
  /** All three, in order: stop accepting, drain (up to `graceMs`), close the connections. */
  close(graceMs?: number): Promise<void>;
}

/** The per-connection state, kept as the uWebSockets.js user data. */
interface Connection {
  readonly buyer: Buyer;
  readonly expiresAtMs: number | null;
  readonly bucket: TokenBucket;
  /** Set while the socket is open; uWebSockets.js sockets must not be touched after close. */
  socket: WebSocket<Connection> | null;
}

const storageProbeTimeoutMs = 2_000;
/** Room above twice `wsBufferedBytesMax` for the largest reply (an `orders` list) before uWebSockets.js drops sends. */
const backpressureHeadroomBytes = 1024 * 1024;
/** How often connections with subscriptions are checked for congestion. */
const congestionCheckIntervalMs = 100;

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  409: '409 Conflict',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

const restockSchema = z.object({ delta: z.number() });

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
  private readonly engine: Engine;
  private readonly limits: EdgeLimits;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly app: TemplatedApp;
  private readonly auth: UserAuthenticator;
  private readonly adminToken: string;
  private readonly challenges: ChallengeBook;
  private readonly userLimiter: KeyedRateLimiter;
  private readonly parser: RequestParser;
  private readonly feed: StockFeed<Connection>;
  private readonly open = new Set<Connection>();
  /** Connections with at least one subscription: the only ones stock pushes can congest. */
  private readonly watchers = new Set<Connection>();
  private listenSocket: us_listen_socket | null = null;
  private accepting = true;
  private upgrading = 0;
  private pending = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly stopStockListener: () => void;
  private congestionTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(options: ServerOptions) {
    this.engine = options.engine;
    this.limits = { ...defaultLimits, ...options.limits };
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.metrics = options.metrics ?? new Metrics();
    this.metrics.watchJournalBacklog(() => (this.engine.isClosed ? 0 : this.engine.journalBacklog));
    this.metrics.watchInFlight(() => this.pending);
    this.metrics.watchCongestion(() => {
      let parked = 0;
      for (const connection of this.watchers) if (this.feed.isParked(connection)) parked += 1;
      return parked;
    });
    this.auth = new UserAuthenticator(options.jwtSecret, this.clock);
    this.adminToken = options.adminToken;
    this.challenges = new ChallengeBook({
      clock: this.clock,
      ttlMs: this.limits.challengeTtlMs,
      challengesMax: this.limits.challengesMax,
    });
    this.userLimiter = new KeyedRateLimiter(
      { requestsPerSecond: this.limits.userRequestsPerSecond, burstRequests: this.limits.userBurstRequests },
      this.limits.rateLimitedUsersMax,
    );
    this.parser = new RequestParser(this.limits.subscriptionsPerConnectionMax);
    this.app = uws.App();
    this.feed = new StockFeed<Connection>({
      clock: this.clock,
      view: (itemId) => this.engine.item(itemId),
      onPush: (kind) => this.metrics.stockPush(kind),
      transport: {
        publish: (topic, message) => {
          this.app.publish(topic, message, false, false);
        },
        subscribe: (connection, topic) => {
          connection.socket?.subscribe(topic);
        },
        unsubscribe: (connection, topic) => {
          connection.socket?.unsubscribe(topic);
        },
        send: (connection, message) => {
          const socket = connection.socket;
          if (socket !== null) socket.cork(() => socket.send(message, false, false));
        },
      },
    });
    this.stopStockListener = this.engine.onStock((view) => this.feed.changed(view.id));
    this.routes();
  }

  get connections(): number {
    return this.open.size;
  }

  get inFlight(): number {
    return this.pending;
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
      this.stopStockListener();
      this.feed.stop();
      throw error;
    }
    this.listenSocket = listenSocket;
    this.host = host;
    this.port = uws.us_socket_local_port(listenSocket as never);
    this.congestionTimer = setInterval(() => this.checkCongestion(), congestionCheckIntervalMs);
    this.congestionTimer.unref();
  }

  stopAccepting(): void {
    this.accepting = false;
    if (this.listenSocket !== null) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  drain(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  closeConnections(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopAccepting();
    if (this.congestionTimer !== null) clearInterval(this.congestionTimer);
    this.stopStockListener();
    this.feed.stop();
    for (const connection of [...this.open]) {
      const socket = connection.socket;
      if (socket === null) continue;
      this.metrics.connectionClosedBy('shutdown');
      socket.end(closeCodes.goingAway, 'server shutting down');
    }
    // Also closes idle HTTP keep-alive connections, so nothing keeps the process alive. The
    // native build has `close` (its type declarations lag behind).
    (this.app as TemplatedApp & { close?: () => void }).close?.();
  }

  async close(graceMs = 10_000): Promise<void> {
    this.stopAccepting();
    const drained = await this.drain(graceMs);
    if (!drained) this.logger.warn({ inFlight: this.pending }, 'requests still in flight after the shutdown grace period');
    this.closeConnections();
  }

  private urlHost(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }

  // ---------------------------------------------------------------- routes

  private routes(): void {
    const app = this.app;
    app.ws<Connection>('/ws', {
      compression: uws.DISABLED,
      maxPayloadLength: this.limits.wsFrameBytesMax,
      // uWebSockets.js drops any send, the close frame included, while more than this is
      // buffered. The server itself closes a connection past `wsBufferedBytesMax` (see `send`),
      // so the headroom above it lets the last reply and the 4408 close frame still go out.
      maxBackpressure: this.limits.wsBufferedBytesMax * 2 + backpressureHeadroomBytes,
      closeOnBackpressureLimit: false as never,
      idleTimeout: this.limits.wsIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (response, request, context) => this.upgrade(response, request, context),
      open: (socket) => {
        const connection = socket.getUserData();
        connection.socket = socket;
        this.open.add(connection);
        this.metrics.connectionOpened();
      },
      message: (socket, data, isBinary) => this.onFrame(socket.getUserData(), data, isBinary),
      drain: (socket) => {
        const connection = socket.getUserData();
        if (this.feed.isParked(connection) && socket.getBufferedAmount() <= this.limits.stockPushBufferedBytesMax / 2) {
          this.feed.unpark(connection);
        }
      },
      close: (socket) => {
        const connection = socket.getUserData();
        connection.socket = null;
        this.open.delete(connection);
        this.watchers.delete(connection);
        this.feed.forget(connection);
        this.metrics.connectionClosed();
      },
    });
    const route = (handler: (response: HttpResponse, request: HttpRequest) => void) => (response: HttpResponse, request: HttpRequest) => {
      try {
        handler(response, request);
      } catch (error) {
        // A bug, not a business outcome: answer it rather than leave the request hanging.
        this.logger.error({ err: error, url: request.getUrl() }, 'an HTTP handler failed');
        this.json(response, 500, { error: 'internal' });
      }
    };
    app.get('/healthz', route((response) => this.json(response, 200, { ok: true })));
    app.get('/readyz', route((response) => this.readiness(response)));
    app.get('/metrics', route((response) => this.renderMetrics(response)));
    app.get(
      '/items/:id',
      route((response, request) => {
        const view = this.engine.item(request.getParameter(0));
        if (view === undefined) this.json(response, 404, { error: 'not_found' });
        else this.json(response, 200, view);
      }),
    );
    app.get('/orders', route((response, request) => this.userOrders(response, request)));
    app.post('/admin/items', route((response, request) => this.adminCreateItem(response, request)));
    app.post('/admin/items/:id/stock', route((response, request) => this.adminRestock(response, request)));
    app.get('/admin/orders', route((response, request) => this.adminSellerOrders(response, request)));
    app.put('/admin/blocklist/:userId', route((response, request) => this.adminBlocklist(response, request, 'block')));
    app.del('/admin/blocklist/:userId', route((response, request) => this.adminBlocklist(response, request, 'unblock')));
    app.any('/*', (response) => this.json(response, 404, { error: 'not_found' }));
  }

  // ---------------------------------------------------------------- WebSocket

  private upgrade(response: HttpResponse, request: HttpRequest, context: unknown): void {
    const key = request.getHeader('sec-websocket-key');
    // The protocol defines no subprotocol; echo the client's first choice, if it offered any.
    const protocol = request.getHeader('sec-websocket-protocol').split(',')[0]!.trim();
    const extensions = request.getHeader('sec-websocket-extensions');
    const token = request.getQuery('token') as string | undefined;
    this.watchAbort(response);
    if (!this.accepting || this.open.size + this.upgrading >= this.limits.connectionsMax) {
      this.json(response, 503, { error: 'unavailable' });
      return;
    }
    this.upgrading += 1;
    void this.auth.verify(token).then((identity) => {
      this.upgrading -= 1;
      if (isAborted(response)) return;
      if (identity === null) {
        this.json(response, 401, { error: 'unauthorized' });
        return;
      }
      if (!this.accepting) {
        this.json(response, 503, { error: 'unavailable' });
        return;
      }
      const connection: Connection = {
        buyer: identity.buyer,
        expiresAtMs: identity.expiresAtMs,
        bucket: new TokenBucket(
          {
            requestsPerSecond: this.limits.connectionRequestsPerSecond,
            burstRequests: this.limits.connectionBurstRequests,
          },
          this.clock.now(),
        ),
        socket: null,
      };
      response.cork(() => response.upgrade(connection, key, protocol, extensions, context as never));
    });
  }

  /**
   * One frame, in this order: decode, the user token's expiry, the rate limits (which count
   * malformed frames too), validation, then the request itself.
   */
  private onFrame(connection: Connection, data: ArrayBuffer, isBinary: boolean): void {
    const socket = connection.socket;
    if (socket === null) return;
    let frame: unknown;
    let problem: string | null = null;
    if (isBinary) problem = 'frames must be JSON text, not binary';
    else if (data.byteLength > this.limits.wsPayloadBytesMax) {
      problem = `the frame is larger than ${this.limits.wsPayloadBytesMax} bytes`;
    } else {
      try {
        frame = JSON.parse(Buffer.from(data).toString('utf8'));
      } catch {
        problem = 'the frame is not JSON';
      }
    }
    const id = problem === null ? usableId(frame) : null;
    const type = problem === null ? requestTypeOf(frame) : 'malformed';
    const nowMs = this.clock.now();
    if (connection.expiresAtMs !== null && nowMs >= connection.expiresAtMs) {
      this.metrics.connectionClosedBy('token_expired');
      socket.end(closeCodes.tokenExpired, 'token expired');
      return;
    }
    if (!connection.bucket.take(nowMs) || !this.userLimiter.take(connection.buyer.userId, nowMs)) {
      this.refuse(connection, type, id, reject('rate_limited'));
      return;
    }
    if (problem !== null) {
      this.refuse(connection, type, null, reject('invalid', problem));
      return;
    }
    const parsed = this.parser.parse(frame);
    if (!parsed.ok) {
      this.refuse(connection, type, id, reject('invalid', parsed.message));
      return;
    }
    if (!this.accepting) {
      this.refuse(connection, type, id, reject('unavailable', 'the server is shutting down; nothing was changed'));
      return;
    }
    try {
      this.dispatch(connection, parsed.request);
    } catch (error) {
      // A bug, not a business outcome; the request is answered and the connection stays.
      this.logger.error({ err: error, type }, 'a request failed');
      this.refuse(connection, type, id, reject('unavailable', 'the request failed; nothing was changed'));
    }
  }

  private dispatch(connection: Connection, request: Request): void {
    const { buyer } = connection;
    switch (request.type) {
      case 'subscribe':
        this.subscribe(connection, request.id, request.items);
        return;
      case 'unsubscribe':
        this.unsubscribe(connection, request.id, request.items);
        return;
      case 'challenge': {
        if (this.engine.definition(request.item) === undefined) {
          this.refuse(connection, request.type, request.id, reject('unknown_item'));
          return;
        }
        const issued = this.challenges.issue(buyer.userId, request.item);
        this.succeed(connection, request.type, challengeMessage(request.id, request.item, issued));
        return;
      }
      case 'reserve':
      case 'buy': {
        const refusal = this.challengeGate(buyer, request);
        if (refusal !== null) {
          this.refuse(connection, request.type, request.id, refusal);
          return;
        }
        const purchase = { itemId: request.item, quantity: request.qty };
        if (request.type === 'reserve') {
          this.perform(connection, request.type, request.id, () => this.engine.reserve(buyer, purchase), (reservation) =>
            reservedMessage(request.id, reservation),
          );
        } else {
          this.perform(connection, request.type, request.id, () => this.engine.buy(buyer, purchase), (order) =>
            orderMessage(request.id, order),
          );
        }
        return;
      }
      case 'confirm':
        this.perform(
          connection,
          request.type,
          request.id,
          () => this.engine.confirm(buyer, request.token),
          (order) => orderMessage(request.id, order),
        );
        return;
      case 'cancel':
        this.perform(
          connection,
          request.type,
          request.id,
          () => this.engine.cancel(buyer, request.token),
          (release) => releasedMessage(request.id, release),
        );
        return;
      case 'orders':
        this.perform(
          connection,
          request.type,
          request.id,
          () => this.engine.orders(buyer.userId).then((orders): { ok: true; orders: OrderView[] } => ({ ok: true, orders })),
          (result) => ordersMessage(request.id, result.orders),
        );
        return;
    }
  }

  private subscribe(connection: Connection, id: string, requested: readonly string[]): void {
    const items = [...new Set(requested)];
    const missing = items.find((itemId) => this.engine.item(itemId) === undefined);
    if (missing !== undefined) {
      this.refuse(connection, 'subscribe', id, reject('unknown_item', `no item ${missing}`));
      return;
    }
    const added = items.filter((itemId) => !this.feed.isSubscribed(connection, itemId)).length;
    if (this.feed.subscriptionCount(connection) + added > this.limits.subscriptionsPerConnectionMax) {
      this.refuse(
        connection,
        'subscribe',
        id,
        reject('invalid', `a connection may watch at most ${this.limits.subscriptionsPerConnectionMax} items`),
      );
      return;
    }
    this.succeed(connection, 'subscribe', subscribedMessage(id, items));
    for (const itemId of items) this.feed.add(connection, itemId);
    this.watchers.add(connection);
  }

  private unsubscribe(connection: Connection, id: string, requested: readonly string[]): void {
    const items = [...new Set(requested)];
    for (const itemId of items) this.feed.remove(connection, itemId);
    if (this.feed.subscriptionCount(connection) === 0) this.watchers.delete(connection);
    this.succeed(connection, 'unsubscribe', unsubscribedMessage(id, items));
  }

  /**
   * The challenge filter, in front of the engine for items that have one. Requests the engine
   * will turn down from memory anyway (unknown item, blocked or ineligible user, sold out,
   * ended) skip it and get the engine's precise reason; everything else must bring the answer
   * to a fresh challenge.
   */
  private challengeGate(
    buyer: Buyer,
    request: { item: string; challengeId?: string | undefined; answer?: number | string | undefined },
  ): Rejection | null {
    const definition = this.engine.definition(request.item);
    if (definition === undefined || definition.challenge === 'none') return null;
    if (qualify(buyer, definition, this.engine.isBlocked(buyer.userId)) !== null) return null;
    const status = this.engine.item(request.item)?.status;
    if (status === 'sold_out' || status === 'ended') return null;
    const refusal = this.challenges.redeem(buyer.userId, request.item, request.challengeId, request.answer);
    return refusal === null ? null : reject(refusal);
  }

  /** Hands a request to the engine and replies when its promise settles. */
  private perform<T extends { readonly ok: true }>(
    connection: Connection,
    type: string,
    id: string,
    start: () => Promise<T | Rejection>,
    success: (value: T) => string,
  ): void {
    let outcome: Promise<T | Rejection>;
    try {
      outcome = start();
    } catch (error) {
      this.logger.error({ err: error, type }, 'the engine refused a request');
      this.refuse(connection, type, id, reject('unavailable'));
      return;
    }
    this.pending += 1;
    outcome.then(
      (result) => {
        if (result.ok) this.succeed(connection, type, success(result));
        else this.refuse(connection, type, id, result);
        this.settled();
      },
      (error: unknown) => {
        this.logger.error({ err: error, type }, 'a request failed');
        this.refuse(connection, type, id, reject('unavailable', 'storage cannot answer now; nothing was changed'));
        this.settled();
      },
    );
  }

  private settled(): void {
    this.pending -= 1;
    if (this.pending === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private succeed(connection: Connection, type: string, message: string): void {
    this.metrics.request(type, 'ok');
    this.send(connection, message);
  }

  private refuse(connection: Connection, type: string, id: string | null, rejection: Rejection): void {
    const reason: RejectionReason = rejection.reason;
    this.metrics.request(type, reason);
    this.send(connection, rejectedMessage(id, reason, rejection.message));
  }

  /**
   * Sends a reply. A reply is never dropped: a connection that has more than
   * `wsBufferedBytesMax` bytes waiting is closed with 4408 instead, before or after the send.
   */
  private send(connection: Connection, message: string): void {
    const socket = connection.socket;
    if (socket === null) return;
    if (socket.getBufferedAmount() > this.limits.wsBufferedBytesMax) {
      this.closeTooSlow(connection, socket);
      return;
    }
    socket.cork(() => socket.send(message, false, false));
    if (connection.socket !== null && socket.getBufferedAmount() > this.limits.wsBufferedBytesMax) {
      this.closeTooSlow(connection, socket);
    }
  }

  private closeTooSlow(connection: Connection, socket: WebSocket<Connection>): void {
    this.logger.debug({ userId: connection.buyer.userId, buffered: socket.getBufferedAmount() }, 'closing a slow connection');
    this.metrics.connectionClosedBy('too_slow');
    socket.end(closeCodes.tooSlow, 'too slow: too many bytes waiting');
  }

  /** Stops stock pushes to subscribers that do not keep up, resumes them when they have caught up. */
  private checkCongestion(): void {
    for (const connection of this.watchers) {
      const socket = connection.socket;
      if (socket === null) continue;
      const buffered = socket.getBufferedAmount();
      if (buffered > this.limits.wsBufferedBytesMax) this.closeTooSlow(connection, socket);
      else if (buffered > this.limits.stockPushBufferedBytesMax) this.feed.park(connection);
      else if (buffered <= this.limits.stockPushBufferedBytesMax / 2) this.feed.unpark(connection);
    }
  }

  // ---------------------------------------------------------------- HTTP

  private json(response: HttpResponse, status: number, body: unknown): void {
    if (isAborted(response) || isAnswered(response)) return;
    (response as { answered?: boolean }).answered = true;
    const text = JSON.stringify(body);
    response.cork(() => {
      response.writeStatus(statusLines[status] ?? `${status}`).writeHeader('content-type', 'application/json').end(text);
    });
  }

  /** Marks the response aborted when the client goes away, as uWebSockets.js requires for async replies. */
  private watchAbort(response: HttpResponse): void {
    response.onAborted(() => {
      (response as { aborted?: boolean }).aborted = true;
    });
  }

  private readiness(response: HttpResponse): void {
    this.watchAbort(response);
    if (!this.accepting || this.engine.isClosed) {
      this.json(response, 503, { ok: false, reason: 'shutting down' });
      return;
    }
    // Every slice must serve (recovered, and not reloading after a failed flush), and the
    // storage must answer now.
    if (!this.engine.ready) {
      this.json(response, 503, { ok: false, reason: 'recovering' });
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), storageProbeTimeoutMs);
    });
    void Promise.race([this.engine.storageReachable(), timeout]).then((reachable) => {
      clearTimeout(timer);
      if (reachable) this.json(response, 200, { ok: true });
      else this.json(response, 503, { ok: false, reason: 'storage unreachable' });
    });
  }

  private renderMetrics(response: HttpResponse): void {
    this.watchAbort(response);
    this.metrics.render().then(
      (text) => {
        if (isAborted(response) || isAnswered(response)) return;
        (response as { answered?: boolean }).answered = true;
        response.cork(() => response.writeStatus('200 OK').writeHeader('content-type', this.metrics.contentType).end(text));
      },
      (error: unknown) => {
        this.logger.error({ err: error }, 'rendering metrics failed');
        this.json(response, 500, { error: 'internal' });
      },
    );
  }

  private async identify(authorization: string): Promise<UserIdentity | null> {
    return this.auth.verify(bearerToken(authorization));
  }

  private isAdmin(request: HttpRequest): boolean {
    const token = bearerToken(request.getHeader('authorization'));
    return token !== null && secretsEqual(token, this.adminToken);
  }

  private userOrders(response: HttpResponse, request: HttpRequest): void {
    this.watchAbort(response);
    const authorization = request.getHeader('authorization');
    void this.identify(authorization).then(async (identity) => {
      if (identity === null) {
        this.json(response, 401, { error: 'unauthorized' });
        return;
      }
      await this.answerOrders(response, () => this.engine.orders(identity.buyer.userId));
    });
  }

  private adminSellerOrders(response: HttpResponse, request: HttpRequest): void {
    this.watchAbort(response);
    if (!this.isAdmin(request)) {
      this.json(response, 401, { error: 'unauthorized' });
      return;
    }
    const seller = decimalId.safeParse(request.getQuery('seller') ?? '');
    if (!seller.success) {
      this.json(response, 400, { error: 'invalid', message: 'seller must be a seller id (a decimal string)' });
      return;
    }
    void this.answerOrders(response, () => this.engine.sellerOrders(seller.data));
  }

  private async answerOrders(response: HttpResponse, read: () => Promise<OrderView[]>): Promise<void> {
    try {
      this.json(response, 200, await read());
    } catch (error) {
      this.logger.error({ err: error }, 'reading orders failed');
      this.json(response, 503, { error: 'unavailable', message: 'storage cannot answer now' });
    }
  }

  private adminCreateItem(response: HttpResponse, request: HttpRequest): void {
    this.watchAbort(response);
    if (!this.isAdmin(request)) {
      this.json(response, 401, { error: 'unauthorized' });
      return;
    }
    this.readJson(response, request, async (body) => {
      const result = await this.engine.createItem(body);
      if (result.ok) this.json(response, 201, result.value);
      else this.json(response, adminStatus(result.error), { error: result.error, message: result.message });
    });
  }

  private adminRestock(response: HttpResponse, request: HttpRequest): void {
    this.watchAbort(response);
    if (!this.isAdmin(request)) {
      this.json(response, 401, { error: 'unauthorized' });
      return;
    }
    const itemId = request.getParameter(0);
    this.readJson(response, request, async (body) => {
      const parsed = restockSchema.safeParse(body);
      if (!parsed.success) {
        this.json(response, 400, { error: 'invalid', message: 'the body must be {"delta": n} with n a positive integer' });
        return;
      }
      const result = await this.engine.restock(itemId, parsed.data.delta);
      if (result.ok) this.json(response, 200, result.value);
      else this.json(response, adminStatus(result.error), { error: result.error, message: result.message });
    });
  }

  private adminBlocklist(response: HttpResponse, request: HttpRequest, action: 'block' | 'unblock'): void {
    this.watchAbort(response);
    if (!this.isAdmin(request)) {
      this.json(response, 401, { error: 'unauthorized' });
      return;
    }
    const userId = decimalId.safeParse(request.getParameter(0));
    if (!userId.success) {
      this.json(response, 400, { error: 'invalid', message: 'the user id must be a decimal string' });
      return;
    }
    const change = action === 'block' ? this.engine.block(userId.data) : this.engine.unblock(userId.data);
    change.then(
      () => this.json(response, 200, { ok: true, userId: userId.data, blocked: action === 'block' }),
      (error: unknown) => {
        this.logger.error({ err: error, action }, 'changing the blocklist failed');
        this.json(response, 503, { error: 'unavailable', message: 'storage cannot take the change now; nothing was changed' });
      },
    );
  }

  /**
   * Reads a JSON body of at most `httpBodyBytesMax` bytes and hands it to `handle`. A body that
   * is too large or not JSON gets 400 `invalid`; a failure inside `handle` gets 503.
   */
  private readJson(response: HttpResponse, request: HttpRequest, handle: (body: unknown) => Promise<void>): void {
    const limit = this.limits.httpBodyBytesMax;
    const declared = Number(request.getHeader('content-length') || '0');
    if (declared > limit) {
      this.json(response, 400, { error: 'invalid', message: `the body is larger than ${limit} bytes` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    response.onData((chunk, isLast) => {
      if (refused) return;
      size += chunk.byteLength;
      if (size > limit) {
        refused = true;
        this.json(response, 400, { error: 'invalid', message: `the body is larger than ${limit} bytes` });
        return;
      }
      // uWebSockets.js reuses the chunk's memory after this callback returns.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (!isLast) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        this.json(response, 400, { error: 'invalid', message: 'the body is not JSON' });
        return;
      }
      handle(body).catch((error: unknown) => {
        this.logger.error({ err: error }, 'an admin request failed');
        this.json(response, 503, { error: 'unavailable', message: 'the request could not be completed; retry later' });
      });
    });
  }
}

function isAborted(response: HttpResponse): boolean {
  return (response as { aborted?: boolean }).aborted === true;
}

function isAnswered(response: HttpResponse): boolean {
  return (response as { answered?: boolean }).answered === true;
}

function adminStatus(error: 'invalid' | 'conflict' | 'not_found' | 'unavailable'): number {
  switch (error) {
    case 'invalid':
      return 400;
    case 'conflict':
      return 409;
    case 'not_found':
      return 404;
    case 'unavailable':
      return 503;
  }
}
