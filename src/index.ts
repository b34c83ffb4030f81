/**
 * The package's public entry point: `import { createEngine, SimulatedClock } from 'seckill'`.
 *
 * Everything a program that embeds the engine needs, and nothing of how it is built: the
 * engine, its options and results, the clocks, the item types and the error classes. The
 * modules behind it may move; what is exported here is what the package promises to keep.
 */
export {
  createEngine,
  type Engine,
  type EngineOptions,
  type Reservation,
  type Order,
  type Release,
  type OrderView,
  type AdminFailure,
  type AdminItemView,
  type AdminResult,
  type PurchaseRequest,
} from './engine.js';
export { SimulatedClock, systemClock, type Clock, type TimerHandle } from './clock.js';
export type { Buyer, Eligibility, ItemDefinition, ItemStatus, ItemView, SaleTerms } from './items.js';
export { rejectionReasons, type Rejection, type RejectionReason } from './domain/reasons.js';
export { ConfigurationError, EngineClosedError, StartupError, StorageUnavailableError } from './errors.js';
