/**
 * The engine's public API, used in-process by other programs' tests and by the server, which
 * is a thin adapter over it. The code lives in `src/engine/`, split by concern; this module is
 * the one place it is imported from.
 *
 *   const engine = await createEngine({ databaseUrl });        // or no URL: embedded PostgreSQL
 *   await engine.createItem({ id: '42', name: 'Phone', sellerId: '7', stock: 1000 });
 *   const order = await engine.buy({ userId: '1001' }, { itemId: '42', quantity: 1 });
 *   engine.item('42');                                          // { available, reserved, sold, status, ... }
 *   await engine.close();
 *
 * What it promises: a successful `reserve`, `confirm`, `buy` or `cancel` resolves only after
 * the change is committed to PostgreSQL; stock is never oversold; a user never holds more than
 * the item's `perUserLimit`. A business "no" resolves to `{ ok: false, reason }`; the promises
 * reject only on programming errors (an engine used after `close`).
 */
export { createEngine } from './engine/create.js';
export { Engine } from './engine/engine.js';
export type {
  AdminError,
  AdminFailure,
  AdminItemView,
  AdminResult,
  EngineOptions,
  Order,
  OrderPage,
  OrderView,
  PageRequest,
  PurchaseRequest,
  Release,
  Reservation,
} from './engine/types.js';
export type { Buyer, ItemDefinition, ItemView } from './items.js';
export type { Rejection, RejectionReason } from './domain/reasons.js';
