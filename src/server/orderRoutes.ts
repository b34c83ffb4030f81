/**
 * The order routes: a buyer's and a seller's orders a page at a time, and the administrator's
 * cancellation of a confirmed order.
 *
 * GET /orders and GET /admin/orders answer a JSON array of order views, newest first, as the
 * contract has it. `?limit=n` (1..1000, default 1000) sizes the page and `?cursor=c` asks for
 * the page after the one whose `x-next-cursor` header said `c`; the last page has no such
 * header. The same cursor also comes as a `link: <…>; rel="next"` header.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { bearerToken } from '../edge/auth.js';
import type { AdminResult, OrderPage, PageRequest } from '../engine.js';
import { decimalId } from '../items.js';
import type { ServerContext } from './context.js';
import { json, watchAbort } from './http.js';
import { adminStatus } from './adminRoutes.js';

/** The page a request asks for, read from its query string (which must be read before any await). */
function pageRequestOf(request: HttpRequest): PageRequest | string {
  const limitText = request.getQuery('limit');
  const cursor = request.getQuery('cursor');
  let limit: number | undefined;
  if (limitText !== undefined && limitText !== '') {
    limit = /^[0-9]{1,7}$/.test(limitText) ? Number(limitText) : Number.NaN;
    if (!Number.isSafeInteger(limit)) return 'limit must be an integer from 1 to 1000';
  }
  return { limit, cursor: cursor === undefined || cursor === '' ? undefined : cursor };
}

/** GET /orders: the caller's own orders, including every order the caller was just told about. */
export function buyerOrders(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const identity = context.auth.verify(bearerToken(request.getHeader('authorization')));
  if (identity === null) {
    json(response, 401, { error: 'unauthorized' });
    return;
  }
  const page = pageRequestOf(request);
  if (typeof page === 'string') {
    json(response, 400, { error: 'invalid', message: page });
    return;
  }
  watchAbort(response);
  void read(context, () => context.engine.orderPage(identity.buyer.userId, page)).then((result) =>
    answerPage(response, context, '/orders', page, result),
  );
}

/** GET /admin/orders?seller=ID: a seller's orders (the caller is an administrator). */
export function sellerOrders(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const seller = decimalId.safeParse(request.getQuery('seller') ?? '');
  if (!seller.success) {
    json(response, 400, { error: 'invalid', message: 'seller must be a seller id (a decimal string)' });
    return;
  }
  const page = pageRequestOf(request);
  if (typeof page === 'string') {
    json(response, 400, { error: 'invalid', message: page });
    return;
  }
  void read(context, () => context.engine.sellerOrderPage(seller.data, page)).then((result) =>
    answerPage(response, context, `/admin/orders?seller=${seller.data}`, page, result),
  );
}

/** POST /admin/orders/:orderId/cancel: 200 with the order, now `cancelled`; again, the same. */
export function cancelOrder(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const orderId = request.getParameter(0);
  void read(context, () => context.engine.cancelOrder(orderId)).then((result) => {
    if (result.ok) json(response, 200, result.value);
    else json(response, adminStatus(result.error), { error: result.error, message: result.message });
  });
}

async function read<T>(context: ServerContext, query: () => Promise<AdminResult<T>>): Promise<AdminResult<T>> {
  try {
    return await query();
  } catch (error) {
    context.logger.error({ err: error }, 'an order request failed');
    return { ok: false, error: 'unavailable', message: 'storage cannot answer now' };
  }
}

function answerPage(response: HttpResponse, context: ServerContext, path: string, page: PageRequest, result: AdminResult<OrderPage>): void {
  if (!result.ok) {
    if (result.error === 'unavailable') context.logger.warn({ message: result.message }, 'orders could not be read');
    json(response, adminStatus(result.error), { error: result.error, message: result.message });
    return;
  }
  const { orders, next } = result.value;
  if (next === null) {
    json(response, 200, orders);
    return;
  }
  const separator = path.includes('?') ? '&' : '?';
  const limit = page.limit === undefined ? '' : `limit=${page.limit}&`;
  json(response, 200, orders, {
    'x-next-cursor': next,
    link: `<${path}${separator}${limit}cursor=${encodeURIComponent(next)}>; rel="next"`,
  });
}

