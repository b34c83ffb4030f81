/**
 * The WebSocket messages of shared/PROTOCOL.md: the requests a client may send (zod schemas),
 * the replies and pushes the server sends, and the close codes the server uses. Pure
 * functions, no I/O.
 *
 * A frame becomes a request in two steps: `JSON.parse`, then `parseRequest`. Anything that
 * fails either step is answered `rejected` with reason `invalid`, echoing the frame's `id` when
 * it is usable (a string of at most 64 characters) and `null` otherwise.
 */
import { z } from 'zod';
import { idempotencyKeyLengthMax, isIdempotencyKey } from '../domain/idempotency.js';
import type { OrderView } from '../engine.js';
import { orderPageSizeMax } from '../orders/orderQueries.js';
import type { RejectionReason } from '../domain/reasons.js';
import { decimalId, isDecimalId, type ItemView } from '../items.js';

export const clientIdLengthMax = 64;
/** The largest `qty` one request may ask for; item limits are checked by the engine. */
export const quantityMax = 1_000_000;
const tokenLengthMax = 1_024;
const challengeIdLengthMax = 64;
const answerLengthMax = 32;
/** A cursor of an orders page: a time and an order id (src/orders/orderQueries.ts). */
const cursorLengthMax = 64;

/**
 * Close codes the server sends. Besides these, uWebSockets.js drops a connection at once,
 * without a close frame (clients report 1006), when a frame is over `wsFrameBytesMax` or a text
 * frame is not valid UTF-8; frames up to that size but over `wsPayloadBytesMax` are answered
 * `invalid` instead, and the connection stays.
 */
export const closeCodes = {
  /** The server is shutting down; reconnect elsewhere or later. */
  goingAway: 1001,
  /** The user's JWT passed its `exp` while the connection was open; reconnect with a fresh token. */
  tokenExpired: 4401,
  /** The client reads too slowly: more than `wsBufferedBytesMax` bytes waited for it. */
  tooSlow: 4408,
} as const;

export const requestTypes = [
  'subscribe',
  'unsubscribe',
  'challenge',
  'reserve',
  'confirm',
  'cancel',
  'buy',
  'orders',
] as const;

export type RequestType = (typeof requestTypes)[number];

/** Looked up for every frame: a set, where the array's `includes` showed in a moment's profile. */
const requestTypeSet: ReadonlySet<string> = new Set(requestTypes);

export function isRequestType(type: unknown): type is RequestType {
  return typeof type === 'string' && requestTypeSet.has(type);
}

const clientId = z.string().max(clientIdLengthMax);
const quantity = z.number().int().min(1).max(quantityMax);
const answerNumberMax = 1e12;
const answer = z.union([z.number().int().min(-answerNumberMax).max(answerNumberMax), z.string().max(answerLengthMax)]);
const token = z.string().max(tokenLengthMax);
/** The client's key for a `reserve` or `buy`: a retry with it gets the original outcome. */
const idempotencyKey = z.string().min(1).max(idempotencyKeyLengthMax);

function itemList(itemsMax: number) {
  return z.array(decimalId).min(1).max(itemsMax);
}

export function requestSchema(itemsMax: number) {
  return z.discriminatedUnion('type', [
    z.object({ type: z.literal('subscribe'), id: clientId, items: itemList(itemsMax) }),
    z.object({ type: z.literal('unsubscribe'), id: clientId, items: itemList(itemsMax) }),
    z.object({ type: z.literal('challenge'), id: clientId, item: decimalId }),
    z.object({
      type: z.literal('reserve'),
      id: clientId,
      item: decimalId,
      qty: quantity,
      challengeId: z.string().max(challengeIdLengthMax).optional(),
      answer: answer.optional(),
      idempotencyKey: idempotencyKey.optional(),
    }),
    z.object({ type: z.literal('confirm'), id: clientId, token }),
    z.object({ type: z.literal('cancel'), id: clientId, token }),
    z.object({
      type: z.literal('buy'),
      id: clientId,
      item: decimalId,
      qty: quantity,
      challengeId: z.string().max(challengeIdLengthMax).optional(),
      answer: answer.optional(),
      idempotencyKey: idempotencyKey.optional(),
    }),
    z.object({
      type: z.literal('orders'),
      id: clientId,
      limit: z.number().int().min(1).max(orderPageSizeMax).optional(),
      cursor: z.string().max(cursorLengthMax).optional(),
    }),
  ]);
}

export type Request = z.infer<ReturnType<typeof requestSchema>>;

export type ParsedRequest = { ok: true; request: Request } | { ok: false; message: string };

/** Parses JSON-decoded frames into requests; built once per server for its subscription bound. */
export class RequestParser {
  private readonly schema: ReturnType<typeof requestSchema>;

  constructor(subscriptionsPerConnectionMax: number) {
    this.schema = requestSchema(subscriptionsPerConnectionMax);
  }

  parse(frame: unknown): ParsedRequest {
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      return { ok: false, message: 'a frame must be a JSON object' };
    }
    const type = (frame as { type?: unknown }).type;
    if (!isRequestType(type)) {
      return { ok: false, message: `unknown type ${JSON.stringify(type ?? null)}` };
    }
    if (type === 'buy' || type === 'reserve') {
      const purchase = plainPurchase(frame as Record<string, unknown>, type);
      if (purchase !== null) return { ok: true, request: purchase };
    }
    const parsed = this.schema.safeParse(frame);
    if (parsed.success) return { ok: true, request: parsed.data };
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'frame' : issue.path.join('.');
    return { ok: false, message: `${where}: ${issue?.message ?? 'invalid'}` };
  }
}

/** A `buy` or `reserve` request, as its frame carries it. */
export type PurchaseFrame = Extract<Request, { type: 'buy' | 'reserve' }>;

/**
 * A `buy` or `reserve` frame checked by hand, field by field, against the same rules as the
 * schema. These are nearly every frame of a flash-sale moment, and zod's general walk cost more
 * than everything else the server does to a frame before the engine (about 2 µs of the 14 µs
 * of user CPU per frame, 10,000 buyers on their own connections, `perf`). It returns exactly
 * what the schema returns (known fields only, in the schema's order) for every frame it
 * accepts, and `null` for anything else, valid or not: the schema then decides and words the
 * error. src/edge/protocol.unit.test.ts holds the two together over generated frames.
 */
export function plainPurchase(frame: Readonly<Record<string, unknown>>, type: 'buy' | 'reserve'): PurchaseFrame | null {
  const { id, item, qty, challengeId, answer, idempotencyKey } = frame;
  if (typeof id !== 'string' || id.length > clientIdLengthMax || !isDecimalId(item)) return null;
  if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty < 1 || qty > quantityMax) return null;
  const request: { -readonly [Key in keyof PurchaseFrame]: PurchaseFrame[Key] } = { type, id, item, qty };
  if (challengeId !== undefined) {
    if (typeof challengeId !== 'string' || challengeId.length > challengeIdLengthMax) return null;
    request.challengeId = challengeId;
  }
  if (answer !== undefined) {
    const number = typeof answer === 'number' && Number.isSafeInteger(answer) && Math.abs(answer) <= answerNumberMax;
    if (!number && (typeof answer !== 'string' || answer.length > answerLengthMax)) return null;
    request.answer = answer;
  }
  if (idempotencyKey !== undefined) {
    if (!isIdempotencyKey(idempotencyKey)) return null;
    request.idempotencyKey = idempotencyKey;
  }
  return request;
}

/** The frame's `id` when it is one a reply can echo, else `null`. */
export function usableId(frame: unknown): string | null {
  if (typeof frame !== 'object' || frame === null) return null;
  const id = (frame as { id?: unknown }).id;
  return typeof id === 'string' && id.length <= clientIdLengthMax ? id : null;
}

/** A request's type for metrics: the known type, or `malformed`. */
export function requestTypeOf(frame: unknown): RequestType | 'malformed' {
  if (typeof frame !== 'object' || frame === null) return 'malformed';
  const type = (frame as { type?: unknown }).type;
  return isRequestType(type) ? type : 'malformed';
}

// ------------------------------------------------------------------ replies and pushes

export function rejectedMessage(id: string | null, reason: RejectionReason, message?: string): string {
  return JSON.stringify(message === undefined ? { type: 'rejected', id, reason } : { type: 'rejected', id, reason, message });
}

export function subscribedMessage(id: string, items: readonly string[]): string {
  return JSON.stringify({ type: 'subscribed', id, items });
}

export function unsubscribedMessage(id: string, items: readonly string[]): string {
  return JSON.stringify({ type: 'unsubscribed', id, items });
}

export function challengeMessage(
  id: string,
  item: string,
  challenge: { challengeId: string; prompt: string; expiresAt: number },
): string {
  return JSON.stringify({
    type: 'challenge',
    id,
    item,
    challengeId: challenge.challengeId,
    prompt: challenge.prompt,
    expiresAt: challenge.expiresAt,
  });
}

export function reservedMessage(
  id: string,
  reservation: { token: string; expiresAt: number; itemId: string; quantity: number },
): string {
  return JSON.stringify({
    type: 'reserved',
    id,
    token: reservation.token,
    expiresAt: reservation.expiresAt,
    item: reservation.itemId,
    qty: reservation.quantity,
  });
}

export function orderMessage(id: string, order: { orderId: string; itemId: string; quantity: number }): string {
  return JSON.stringify({ type: 'order', id, orderId: order.orderId, item: order.itemId, qty: order.quantity });
}

export function releasedMessage(id: string, release: { itemId: string; quantity: number }): string {
  return JSON.stringify({ type: 'released', id, item: release.itemId, qty: release.quantity });
}

/** The `orders` reply; `next` (an addition to the contract) is the cursor of the next page, or `null`. */
export function ordersMessage(id: string, orders: readonly OrderView[], next: string | null = null): string {
  return JSON.stringify({ type: 'orders', id, orders, next });
}

/** The `stock` push; `stock` (the item's total) is an addition to the contract's fields. */
export function stockMessage(view: ItemView): string {
  return JSON.stringify({
    type: 'stock',
    item: view.id,
    available: view.available,
    reserved: view.reserved,
    sold: view.sold,
    status: view.status,
    stock: view.stock,
  });
}
