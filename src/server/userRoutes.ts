/**
 * The HTTP routes for buyers and shop pages: GET /items/:id (public, from the engine's memory,
 * never the database) and GET /orders (the caller's own orders, with a user JWT).
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { ServerContext } from './context.js';
import { guarded, json } from './http.js';
import { buyerOrders } from './orderRoutes.js';

export function registerUserRoutes(app: TemplatedApp, context: ServerContext): void {
  app.get(
    '/items/:id',
    guarded(context.logger, (response, request) => {
      const view = context.engine.item(request.getParameter(0));
      if (view === undefined) json(response, 404, { error: 'not_found' });
      else json(response, 200, view);
    }),
  );
  app.get('/orders', guarded(context.logger, (response, request) => buyerOrders(response, request, context)));
}
