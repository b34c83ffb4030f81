/**
 * One WebSocket connection's state, and how replies reach it.
 *
 * A reply is never dropped: a connection that has more than `wsBufferedBytesMax` bytes waiting
 * is closed with 4408 instead, before or after the send. Every reply is counted in the metrics
 * by request type and outcome.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { Rejection, RejectionReason } from '../domain/reasons.js';
import { closeCodes, rejectedMessage } from '../edge/protocol.js';
import type { TokenBucket } from '../edge/rateLimit.js';
import type { Buyer } from '../items.js';
import type { ServerContext } from './context.js';

/** The per-connection state, kept as the uWebSockets.js user data. */
export interface Connection {
  readonly buyer: Buyer;
  readonly expiresAtMs: number | null;
  readonly bucket: TokenBucket;
  /**
   * The user's bucket in the server's per-user limiter, kept here from the connection's opening
   * so that a frame costs no lookup by user id; asked for again once the limiter forgot it.
   */
  userBucket: TokenBucket | null;
  /** Set while the socket is open; uWebSockets.js sockets must not be touched after close. */
  socket: WebSocket<Connection> | null;
}

export class Replies {
  constructor(private readonly context: ServerContext) {}

  succeed(connection: Connection, type: string, message: string): void {
    this.context.metrics.request(type, 'ok');
    this.send(connection, message);
  }

  refuse(connection: Connection, type: string, id: string | null, rejection: Rejection): void {
    const reason: RejectionReason = rejection.reason;
    this.context.metrics.request(type, reason);
    this.send(connection, rejectedMessage(id, reason, rejection.message));
  }

  private send(connection: Connection, message: string): void {
    const socket = connection.socket;
    if (socket === null) return;
    const bufferedMax = this.context.limits.wsBufferedBytesMax;
    if (socket.getBufferedAmount() > bufferedMax) {
      this.closeTooSlow(connection, socket);
      return;
    }
    // No `cork` around it: uWebSockets.js corks a lone send itself (inside a handler it already
    // is), and the closure and the call back into JavaScript cost more than the send's own work.
    socket.send(message, false, false);
    if (connection.socket !== null && socket.getBufferedAmount() > bufferedMax) {
      this.closeTooSlow(connection, socket);
    }
  }

  closeTooSlow(connection: Connection, socket: WebSocket<Connection>): void {
    this.context.logger.debug({ userId: connection.buyer.userId, buffered: socket.getBufferedAmount() }, 'closing a slow connection');
    this.context.metrics.connectionClosedBy('too_slow');
    socket.end(closeCodes.tooSlow, 'too slow: too many bytes waiting');
  }
}
