/**
 * The administrator's HTTP routes, behind `Authorization: Bearer SECKILL_ADMIN_TOKEN`: create,
 * list, show and change items (their window and limit, or end a sale now), add stock, a
 * seller's orders, cancelling an order (orderRoutes.ts), and the blocklist. Every change is the engine's, and journaled there; these
 * handlers check the token, parse the request and map the engine's answer to a status.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { idempotencyKeyLengthMax } from '../domain/idempotency.js';
import { decimalId } from '../items.js';
import type { AdminError, AdminResult } from '../engine.js';
import type { ServerContext } from './context.js';
import { guarded, isAdmin, json, readJson, watchAbort } from './http.js';
import { cancelOrder, sellerOrders } from './orderRoutes.js';

const restockSchema = z.object({ delta: z.number(), idempotencyKey: z.string().min(1).max(idempotencyKeyLengthMax).optional() });

export function registerAdminRoutes(app: TemplatedApp, context: ServerContext): void {
  const route = (handler: (response: HttpResponse, request: HttpRequest) => void) =>
    guarded(context.logger, (response, request) => {
      watchAbort(response);
      if (!isAdmin(request, context.adminToken)) {
        json(response, 401, { error: 'unauthorized' });
        return;
      }
      handler(response, request);
    });
  app.post('/admin/items', route((response, request) => createItem(response, request, context)));
  app.get('/admin/items', route((response) => listItems(response, context)));
  app.get('/admin/items/:id', route((response, request) => showItem(response, request, context)));
  app.patch('/admin/items/:id', route((response, request) => amendItem(response, request, context)));
  app.post('/admin/items/:id/end', route((response, request) => endSale(response, request, context)));
  app.post('/admin/items/:id/stock', route((response, request) => restock(response, request, context)));
  app.get('/admin/items/:id/reconciliation', route((response, request) => reconciliation(response, request, context)));
  app.get('/admin/orders', route((response, request) => sellerOrders(response, request, context)));
  app.post('/admin/orders/:orderId/cancel', route((response, request) => cancelOrder(response, request, context)));
  app.put('/admin/blocklist/:userId', route((response, request) => changeBlocklist(response, request, context, 'block')));
  app.del('/admin/blocklist/:userId', route((response, request) => changeBlocklist(response, request, context, 'unblock')));
}

function createItem(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  readJson(response, request, bodyOptions(context), async (body) => {
    const result = await context.engine.createItem(body);
    if (result.ok) json(response, 201, result.value);
    else json(response, adminStatus(result.error), { error: result.error, message: result.message });
  });
}

/** Every item's view, in id order. */
function listItems(response: HttpResponse, context: ServerContext): void {
  const ids = context.engine.itemIds().sort((left, right) => (BigInt(left) < BigInt(right) ? -1 : BigInt(left) > BigInt(right) ? 1 : 0));
  json(response, 200, ids.map((id) => context.engine.item(id)));
}

function showItem(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const itemId = request.getParameter(0);
  const view = context.engine.adminItem(itemId);
  if (view === undefined) json(response, 404, { error: 'not_found', message: `no item ${itemId}` });
  else json(response, 200, view);
}

function amendItem(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const itemId = request.getParameter(0);
  readJson(response, request, bodyOptions(context), async (body) => {
    answer(response, await context.engine.amendItem(itemId, body));
  });
}

function endSale(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  void context.engine.endSale(request.getParameter(0)).then(
    (result) => answer(response, result),
    (error: unknown) => {
      context.logger.error({ err: error }, 'ending a sale failed');
      json(response, 503, { error: 'unavailable', message: 'the request could not be completed; retry later' });
    },
  );
}

function answer(response: HttpResponse, result: AdminResult<unknown>): void {
  if (result.ok) json(response, 200, result.value);
  else json(response, adminStatus(result.error), { error: result.error, message: result.message });
}

function restock(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const itemId = request.getParameter(0);
  readJson(response, request, bodyOptions(context), async (body) => {
    const parsed = restockSchema.safeParse(body);
    if (!parsed.success) {
      json(response, 400, {
        error: 'invalid',
        message: 'the body must be {"delta": n} with n a positive integer, and optionally "idempotencyKey" (1 to 64 characters)',
      });
      return;
    }
    const result = await context.engine.restock(itemId, parsed.data.delta, parsed.data.idempotencyKey);
    if (result.ok) json(response, 200, result.value);
    else json(response, adminStatus(result.error), { ...result, ok: undefined });
  });
}

/** `?from=&to=`: ISO 8601 dates or milliseconds since the epoch; the range is [from, to). */
function reconciliation(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  const itemId = request.getParameter(0);
  const moment = (name: string, fallback: number): number | null => {
    const text = request.getQuery(name);
    if (text === undefined || text === '') return fallback;
    const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    return Number.isFinite(value) ? value : null;
  };
  const fromMs = moment('from', 0);
  const toMs = moment('to', Number.MAX_SAFE_INTEGER);
  if (fromMs === null || toMs === null) {
    json(response, 400, { error: 'invalid', message: 'from and to must be ISO 8601 dates or milliseconds since the epoch' });
    return;
  }
  context.engine.reconciliation(itemId, fromMs, toMs).then(
    (result) => answer(response, result),
    (error: unknown) => {
      context.logger.error({ err: error }, 'reading a reconciliation failed');
      json(response, 503, { error: 'unavailable', message: 'the journals cannot be read now; retry later' });
    },
  );
}

function changeBlocklist(response: HttpResponse, request: HttpRequest, context: ServerContext, action: 'block' | 'unblock'): void {
  const userId = decimalId.safeParse(request.getParameter(0));
  if (!userId.success) {
    json(response, 400, { error: 'invalid', message: 'the user id must be a decimal string' });
    return;
  }
  const change = action === 'block' ? context.engine.block(userId.data) : context.engine.unblock(userId.data);
  change.then(
    () => json(response, 200, { ok: true, userId: userId.data, blocked: action === 'block' }),
    (error: unknown) => {
      context.logger.error({ err: error, action }, 'changing the blocklist failed');
      json(response, 503, { error: 'unavailable', message: 'storage cannot take the change now; nothing was changed' });
    },
  );
}

function bodyOptions(context: ServerContext): { bodyBytesMax: number; logger: ServerContext['logger'] } {
  return { bodyBytesMax: context.limits.httpBodyBytesMax, logger: context.logger };
}

/** The HTTP status of an administrative failure; shared by every admin route. */
export function adminStatus(error: AdminError): number {
  switch (error) {
    case 'invalid':
      return 400;
    case 'conflict':
      return 409;
    case 'not_found':
      return 404;
    case 'unavailable':
    case 'incomplete':
    case 'unknown':
      return 503;
  }
}
