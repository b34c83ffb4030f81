/**
 * The HTTP routes for buyers and shop pages: GET /items/:id (public, from the engine's memory,
 * never the database) and GET /orders (the caller's own orders, with a user JWT).
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { bearerToken } from '../edge/auth.js';
import type { OrderView } from '../engine.js';
import type { ServerContext } from './context.js';
import { guarded, json, watchAbort } from './http.js';

export function registerUserRoutes(app: TemplatedApp, context: ServerContext): void {
  app.get(
    '/items/:id',
    guarded(context.logger, (response, request) => {
      const view = context.engine.item(request.getParameter(0));
      if (view === undefined) json(response, 404, { error: 'not_found' });
      else json(response, 200, view);
    }),
  );
  app.get('/orders', guarded(context.logger, (response, request) => userOrders(response, request, context)));
}

function userOrders(response: HttpResponse, request: HttpRequest, context: ServerContext): void {
  watchAbort(response);
  const authorization = request.getHeader('authorization');
  void context.auth.verify(bearerToken(authorization)).then(async (identity) => {
    if (identity === null) {
      json(response, 401, { error: 'unauthorized' });
      return;
    }
    await answerOrders(response, context, () => context.engine.orders(identity.buyer.userId));
  });
}

/** Answers 200 with the orders read, or 503 when storage cannot answer. */
export async function answerOrders(response: HttpResponse, context: ServerContext, read: () => Promise<OrderView[]>): Promise<void> {
  try {
    json(response, 200, await read());
  } catch (error) {
    context.logger.error({ err: error }, 'reading orders failed');
    json(response, 503, { error: 'unavailable', message: 'storage cannot answer now' });
  }
}
