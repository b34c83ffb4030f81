/**
 * `seckill/client`: the client library for shops' front ends. See SeckillClient (client.ts)
 * for what it promises, and README.md ("The client library") for a complete example.
 */
export { SeckillClient, type PurchaseOptions, type RequestOptions, type SeckillClientOptions } from './client.js';
export { ClientClosedError, OutcomeUnknownError, QueueFullError, RequestTimeoutError, type Unanswered } from './errors.js';
export {
  rejectionReasons,
  type Challenge,
  type ChallengeAnswer,
  type ItemStatus,
  type Order,
  type OrderView,
  type Orders,
  type Outcome,
  type Rejected,
  type RejectionReason,
  type Released,
  type ReplyOf,
  type Request,
  type RequestType,
  type Reserved,
  type StockUpdate,
  type Subscribed,
  type Unsubscribed,
} from './messages.js';
export type { BackoffPolicy } from './backoff.js';
export type { ConnectionChange, ConnectionState, SocketLike, TokenProvider, WebSocketConstructor } from './reconnectingSocket.js';
