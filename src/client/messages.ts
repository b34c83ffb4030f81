/**
 * The wire contract (shared/PROTOCOL.md) as TypeScript types, from the client's side: what it
 * sends, what the server answers, and what it pushes. The server's additions to the contract
 * (README.md, "The server") are typed too, as optional fields where an older server may not
 * send them.
 *
 * Ids (items, users, sellers, orders) are decimal strings, never numbers, so no id loses
 * precision; quantities and times (ms since the epoch) are numbers.
 */
import type { RejectionReason } from '../domain/reasons.js';

export { rejectionReasons, type RejectionReason } from '../domain/reasons.js';

export type ItemStatus = 'not_started' | 'on_sale' | 'sold_out' | 'ended';

/** The answer to a request that did not succeed; `reason` is one of PROTOCOL.md's reasons. */
export interface Rejected {
  readonly ok: false;
  readonly reason: RejectionReason;
  /** A human explanation, when the server gave one. */
  readonly message?: string;
}

/** A request's answer: its success reply with `ok: true`, or a rejection. Never an exception. */
export type Outcome<Reply> = (Reply & { readonly ok: true }) | Rejected;

// ------------------------------------------------------------------ replies

export interface Subscribed {
  readonly type: 'subscribed';
  readonly items: readonly string[];
}

export interface Unsubscribed {
  readonly type: 'unsubscribed';
  readonly items: readonly string[];
}

export interface Challenge {
  readonly type: 'challenge';
  readonly challengeId: string;
  /** The question to show the buyer, such as "What is 12 + 7?". */
  readonly prompt: string;
  readonly item?: string;
  /** When the challenge can no longer be answered. */
  readonly expiresAt?: number;
}

export interface Reserved {
  readonly type: 'reserved';
  /** The reservation token to `confirm` or `cancel`. */
  readonly token: string;
  /** When the reservation expires and its stock goes back on sale. */
  readonly expiresAt: number;
  readonly item?: string;
  readonly qty?: number;
}

export interface Order {
  readonly type: 'order';
  readonly orderId: string;
  readonly item: string;
  readonly qty: number;
}

export interface Released {
  readonly type: 'released';
  readonly item: string;
  readonly qty: number;
}

export interface OrderView {
  readonly orderId: string;
  readonly itemId: string;
  readonly userId: string;
  readonly sellerId: string;
  readonly qty: number;
  readonly status: 'confirmed' | 'cancelled';
  readonly createdAt: number;
}

export interface Orders {
  readonly type: 'orders';
  readonly orders: readonly OrderView[];
}

// ------------------------------------------------------------------ pushes

/** The `stock` push: an item's committed figures, sent on subscribe and when they change. */
export interface StockUpdate {
  readonly type: 'stock';
  readonly item: string;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly status: ItemStatus;
  /** The item's total stock (`available + reserved + sold`), an addition of this server. */
  readonly stock?: number;
}

// ------------------------------------------------------------------ requests

/** The fields a `reserve` or `buy` needs for an item with a challenge. */
export interface ChallengeAnswer {
  readonly challengeId?: string;
  readonly answer?: number | string;
}

export type Request =
  | { readonly type: 'subscribe'; readonly items: readonly string[] }
  | { readonly type: 'unsubscribe'; readonly items: readonly string[] }
  | { readonly type: 'challenge'; readonly item: string }
  | ({ readonly type: 'reserve'; readonly item: string; readonly qty: number; readonly idempotencyKey?: string } & ChallengeAnswer)
  | { readonly type: 'confirm'; readonly token: string }
  | { readonly type: 'cancel'; readonly token: string }
  | ({ readonly type: 'buy'; readonly item: string; readonly qty: number; readonly idempotencyKey?: string } & ChallengeAnswer)
  | { readonly type: 'orders' };

export type RequestType = Request['type'];

/** The success reply of each request type. */
export interface ReplyOf {
  subscribe: Subscribed;
  unsubscribe: Unsubscribed;
  challenge: Challenge;
  reserve: Reserved;
  confirm: Order;
  cancel: Released;
  buy: Order;
  orders: Orders;
}

export const successTypes: { readonly [Type in RequestType]: ReplyOf[Type]['type'] } = {
  subscribe: 'subscribed',
  unsubscribe: 'unsubscribed',
  challenge: 'challenge',
  reserve: 'reserved',
  confirm: 'order',
  cancel: 'released',
  buy: 'order',
  orders: 'orders',
};

/**
 * Whether sending a request twice can change more than sending it once. `buy` and `reserve`
 * are made safe by their idempotency key (when the server honours it); `confirm` and `cancel`
 * are not: a second `confirm` of a reservation that did commit is answered `token_used`, which
 * does not tell the order, so a lost answer to them cannot be learned by asking again.
 */
export const changesState: { readonly [Type in RequestType]: boolean } = {
  subscribe: false,
  unsubscribe: false,
  challenge: false,
  reserve: true,
  confirm: true,
  cancel: true,
  buy: true,
  orders: false,
};
