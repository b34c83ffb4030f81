/**
 * The WebSocket side of the server at /ws: the upgrade (JWT in the `token` query parameter,
 * the connection bound), each frame's checks before dispatch, the stock feed's transport over
 * uWebSockets.js pub/sub, and flow control for slow readers.
 *
 * A slow reader never slows anyone else: its stock pushes stop while more than
 * `stockPushBufferedBytesMax` bytes wait for it and resume with the latest figures; replies are
 * never dropped, and a connection with more than `wsBufferedBytesMax` bytes waiting is closed
 * with 4408.
 */
import { Buffer } from 'node:buffer';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import { reject } from '../domain/reasons.js';
import { ChallengeBook } from '../edge/challenge.js';
import { RequestParser, closeCodes, requestTypeOf, usableId, type Request } from '../edge/protocol.js';
import { readPurchaseFrame } from '../edge/purchaseFrame.js';
import { KeyedRateLimiter, TokenBucket } from '../edge/rateLimit.js';
import { StockFeed } from '../edge/stockFeed.js';
import { uws } from '../edge/uws.js';
import { Replies, type Connection } from './connection.js';
import type { ServerContext } from './context.js';
import { RequestDispatcher } from './dispatch.js';
import { json } from './http.js';

/** Room above twice `wsBufferedBytesMax` for the largest reply (an `orders` list) before uWebSockets.js drops sends. */
const backpressureHeadroomBytes = 1024 * 1024;
/** How often connections with subscriptions are checked for congestion. */
const congestionCheckIntervalMs = 100;
/** How often the shutdown looks whether the connections it closes on drain are all closed. */
const closePollMs = 10;

export class WebSocketSessions {
  private readonly open = new Set<Connection>();
  /** Connections the shutdown closes once their waiting replies have gone out. */
  private readonly closingOnDrain = new Set<Connection>();
  /** Connections with at least one subscription: the only ones stock pushes can congest. */
  private readonly watchers = new Set<Connection>();
  private readonly replies: Replies;
  private readonly feed: StockFeed<Connection>;
  private readonly userLimiter: KeyedRateLimiter;
  private readonly parser: RequestParser;
  private readonly dispatcher: RequestDispatcher;
  private readonly stopStockListener: () => void;
  private congestionTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly app: TemplatedApp,
    private readonly context: ServerContext,
  ) {
    const { engine, limits, clock, metrics } = context;
    this.replies = new Replies(context);
    this.userLimiter = new KeyedRateLimiter(
      { requestsPerSecond: limits.userRequestsPerSecond, burstRequests: limits.userBurstRequests },
      limits.rateLimitedUsersMax,
    );
    this.parser = new RequestParser(limits.subscriptionsPerConnectionMax);
    this.feed = new StockFeed<Connection>({
      clock,
      view: (itemId) => engine.item(itemId),
      onPush: (kind) => metrics.stockPush(kind),
      transport: {
        publish: (topic, message) => {
          app.publish(topic, message, false, false);
        },
        subscribe: (connection, topic) => {
          connection.socket?.subscribe(topic);
        },
        unsubscribe: (connection, topic) => {
          connection.socket?.unsubscribe(topic);
        },
        send: (connection, message) => {
          // A lone send: uWebSockets.js corks it itself (see Replies).
          connection.socket?.send(message, false, false);
        },
      },
    });
    const challenges = new ChallengeBook({ clock, ttlMs: limits.challengeTtlMs, challengesMax: limits.challengesMax });
    this.dispatcher = new RequestDispatcher(context, { replies: this.replies, challenges, feed: this.feed, watchers: this.watchers });
    this.stopStockListener = engine.onStock((view) => this.feed.changed(view.id));
    metrics.watchCongestion(() => {
      let parked = 0;
      for (const connection of this.watchers) if (this.feed.isParked(connection)) parked += 1;
      return parked;
    });
    this.register();
  }

  /** Open WebSocket connections. */
  get count(): number {
    return this.open.size;
  }

  /** Starts the periodic congestion check; call once the server listens. */
  startCongestionChecks(): void {
    this.congestionTimer = setInterval(() => this.checkCongestion(), congestionCheckIntervalMs);
    this.congestionTimer.unref();
  }

  /** Stops the stock feed and the timers, for a server that will never serve. */
  stop(): void {
    if (this.congestionTimer !== null) clearInterval(this.congestionTimer);
    this.stopStockListener();
    this.feed.stop();
  }

  /** Stops everything and closes every open connection with 1001. */
  /**
   * Stops everything and closes every open connection with 1001. A connection with replies
   * still waiting in this process (its client reads slowly) is closed once they have gone out
   * to the kernel (its drain), or when `timeoutMs` has passed: closing it earlier, or stopping
   * the app with them, would cut it (1006) and lose replies to requests that were carried out.
   * Resolves once every connection has been closed.
   */
  async closeAll(timeoutMs: number): Promise<void> {
    this.stop();
    for (const connection of [...this.open]) {
      const socket = connection.socket;
      if (socket === null) continue;
      if (socket.getBufferedAmount() > 0) this.closingOnDrain.add(connection);
      else this.goAway(connection, socket);
    }
    const deadline = performance.now() + timeoutMs;
    while (this.closingOnDrain.size > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, closePollMs));
    }
    for (const connection of [...this.closingOnDrain]) {
      if (connection.socket !== null) this.goAway(connection, connection.socket);
    }
    this.closingOnDrain.clear();
  }

  private goAway(connection: Connection, socket: WebSocket<Connection>): void {
    this.closingOnDrain.delete(connection);
    this.context.metrics.connectionClosedBy('shutdown');
    socket.end(closeCodes.goingAway, 'server shutting down');
  }

  private register(): void {
    const { limits, metrics } = this.context;
    this.app.ws<Connection>('/ws', {
      compression: uws.DISABLED,
      maxPayloadLength: limits.wsFrameBytesMax,
      // uWebSockets.js drops any send, the close frame included, while more than this is
      // buffered. The server itself closes a connection past `wsBufferedBytesMax` (see
      // Replies), so the headroom above it lets the last reply and the 4408 close frame still
      // go out.
      maxBackpressure: limits.wsBufferedBytesMax * 2 + backpressureHeadroomBytes,
      closeOnBackpressureLimit: false as never,
      idleTimeout: limits.wsIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (response, request, context) => this.upgrade(response, request, context),
      open: (socket) => {
        const connection = socket.getUserData();
        connection.socket = socket;
        // Made now rather than at the first frame: buyers connect before a sale begins.
        connection.userBucket = this.userLimiter.bucketFor(connection.buyer.userId, this.context.clock.now());
        this.open.add(connection);
        metrics.connectionOpened();
      },
      message: (socket, data, isBinary) => this.onFrame(socket.getUserData(), data, isBinary),
      drain: (socket) => {
        const connection = socket.getUserData();
        if (this.closingOnDrain.has(connection) && socket.getBufferedAmount() === 0) {
          this.goAway(connection, socket);
          return;
        }
        if (this.feed.isParked(connection) && socket.getBufferedAmount() <= limits.stockPushBufferedBytesMax / 2) {
          this.feed.unpark(connection);
        }
      },
      close: (socket) => {
        const connection = socket.getUserData();
        connection.socket = null;
        this.open.delete(connection);
        this.closingOnDrain.delete(connection);
        this.watchers.delete(connection);
        this.feed.forget(connection);
        metrics.connectionClosed();
      },
    });
  }

  /**
   * Synchronous from start to end: uWebSockets.js 20.30 can close a socket upgraded later, from
   * a promise (see src/edge/auth.ts), so the token is checked here and the upgrade done at once.
   */
  private upgrade(response: HttpResponse, request: HttpRequest, upgradeContext: unknown): void {
    const { limits, clock, auth } = this.context;
    if (!this.context.admission.accepting || this.open.size >= limits.connectionsMax) {
      json(response, 503, { error: 'unavailable' });
      return;
    }
    const identity = auth.verify(request.getQuery('token'));
    if (identity === null) {
      json(response, 401, { error: 'unauthorized' });
      return;
    }
    const connection: Connection = {
      buyer: identity.buyer,
      expiresAtMs: identity.expiresAtMs,
      bucket: new TokenBucket(
        { requestsPerSecond: limits.connectionRequestsPerSecond, burstRequests: limits.connectionBurstRequests },
        clock.now(),
      ),
      userBucket: null,
      socket: null,
    };
    response.upgrade(
      connection,
      request.getHeader('sec-websocket-key'),
      // The protocol defines no subprotocol; echo the client's first choice, if it offered any.
      request.getHeader('sec-websocket-protocol').split(',')[0]!.trim(),
      request.getHeader('sec-websocket-extensions'),
      upgradeContext as never,
    );
  }

  /**
   * One frame, in this order: decode, the user token's expiry, the rate limits (which count
   * malformed frames too), validation, then the request itself. A plain `buy` or `reserve`
   * frame, nearly every frame of a sale, is read without `JSON.parse` (src/edge/purchaseFrame.ts).
   */
  private onFrame(connection: Connection, data: ArrayBuffer, isBinary: boolean): void {
    const { limits, clock, metrics, logger } = this.context;
    const socket = connection.socket;
    if (socket === null) return;
    let request: Request | null = null;
    let frame: unknown;
    let problem: string | null = null;
    if (isBinary) problem = 'frames must be JSON text, not binary';
    else if (data.byteLength > limits.wsPayloadBytesMax) {
      problem = `the frame is larger than ${limits.wsPayloadBytesMax} bytes`;
    } else {
      // `Buffer` imported, not Node's global: that one is a getter, called on every use.
      const text = Buffer.from(data).toString('utf8');
      request = readPurchaseFrame(text);
      if (request === null) {
        try {
          frame = JSON.parse(text);
        } catch {
          problem = 'the frame is not JSON';
        }
      }
    }
    const id = request !== null ? request.id : problem === null ? usableId(frame) : null;
    const type = request !== null ? request.type : problem === null ? requestTypeOf(frame) : 'malformed';
    const nowMs = clock.now();
    if (connection.expiresAtMs !== null && nowMs >= connection.expiresAtMs) {
      metrics.connectionClosedBy('token_expired');
      socket.end(closeCodes.tokenExpired, 'token expired');
      return;
    }
    if (!connection.bucket.take(nowMs) || !this.userBucketOf(connection, nowMs).take(nowMs)) {
      this.replies.refuse(connection, type, id, reject('rate_limited'));
      return;
    }
    if (problem !== null) {
      this.replies.refuse(connection, type, null, reject('invalid', problem));
      return;
    }
    if (request === null) {
      const parsed = this.parser.parse(frame);
      if (!parsed.ok) {
        this.replies.refuse(connection, type, id, reject('invalid', parsed.message));
        return;
      }
      request = parsed.request;
    }
    if (!this.context.admission.accepting) {
      this.replies.refuse(connection, type, id, reject('unavailable', 'the server is shutting down; nothing was changed'));
      return;
    }
    try {
      this.dispatcher.dispatch(connection, request);
    } catch (error) {
      // A bug, not a business outcome; the request is answered and the connection stays.
      logger.error({ err: error, type }, 'a request failed');
      this.replies.refuse(connection, type, id, reject('unavailable', 'the request failed; nothing was changed'));
    }
  }

  /** The connection's user's bucket in the per-user limiter, asked for again if the limiter forgot it. */
  private userBucketOf(connection: Connection, nowMs: number): TokenBucket {
    let bucket = connection.userBucket;
    if (bucket === null || bucket.forgotten) {
      bucket = this.userLimiter.bucketFor(connection.buyer.userId, nowMs);
      connection.userBucket = bucket;
    }
    return bucket;
  }

  /** Stops stock pushes to subscribers that do not keep up, resumes them when they have caught up. */
  private checkCongestion(): void {
    const { limits } = this.context;
    for (const connection of this.watchers) {
      const socket = connection.socket;
      if (socket === null) continue;
      const buffered = socket.getBufferedAmount();
      if (buffered > limits.wsBufferedBytesMax) this.replies.closeTooSlow(connection, socket);
      else if (buffered > limits.stockPushBufferedBytesMax) this.feed.park(connection);
      else if (buffered <= limits.stockPushBufferedBytesMax / 2) this.feed.unpark(connection);
    }
  }
}
