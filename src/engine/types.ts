/**
 * The types of the engine's public API: its options, and what its calls resolve to.
 */
import type { Clock } from '../clock.js';
import type { ItemView } from '../items.js';
import type { FlushReport } from '../persistence/journal.js';
import type { OrderOptions } from '../orders/orderOptions.js';

export type { OrderPage, OrderView, PageRequest } from '../orders/orderQueries.js';

export interface EngineOptions extends OrderOptions {
  /**
   * The primary PostgreSQL database: the catalog, the blocklist, and the first inventory
   * database. Unset: an embedded PostgreSQL in `dataDirectory`, with two inventory databases.
   */
  readonly databaseUrl?: string | undefined;
  /** Further inventory databases, over which the slices of an item are spread with the primary's. */
  readonly extraInventoryDatabaseUrls?: readonly string[] | undefined;
  /** Where the embedded PostgreSQL keeps its data; default `./.seckill`. */
  readonly dataDirectory?: string | undefined;
  /**
   * Throw-away storage, for tests: without `databaseUrl`, the embedded PostgreSQL runs in a new
   * temporary directory instead of `dataDirectory`; with it, the engine works in new databases
   * it creates on that server (and on each extra inventory server). `close()` removes them.
   */
  readonly temporary?: boolean | undefined;
  /**
   * How long to keep trying to reach `databaseUrl` at start while PostgreSQL is down or starting,
   * with growing pauses, saying each time what it waits for; default 0, one try. (The server sets
   * it from SECKILL_DATABASE_WAIT_MS.)
   */
  readonly databaseWaitMs?: number | undefined;
  readonly clock?: Clock | undefined;
  /** Events written by one journal transaction at most. */
  readonly flushEventsMax?: number | undefined;
  readonly snapshotEvery?: number | undefined;
  readonly mailboxDepthMax?: number | undefined;
  /**
   * Events waiting for the journal of one inventory database at most before a slice takes a
   * new command: past it, `unavailable` at once (nothing changed). Reached only when
   * PostgreSQL commits slower than orders arrive.
   */
  readonly backlogEventsMax?: number | undefined;
  /**
   * Worker threads hosting the slices (piscina). 0 runs every slice in this thread, which on a
   * 2-core machine is the fastest for one hot item (see bench/shards.ts).
   */
  readonly shards?: number | undefined;
  /** Slices of an item created without `slices`: the engine's choice. */
  readonly defaultSlices?: number | undefined;
  /** Engine process number (0..99), kept in the order ids (src/orders/orderIds.ts). */
  readonly nodeId?: number | undefined;
  readonly log?: EngineLog | undefined;
  /** Told about every journal flush: batch size and duration, for metrics and benchmarks. */
  readonly onFlush?: ((report: FlushReport) => void) | undefined;
}

export type EngineLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;

export interface Reservation {
  readonly ok: true;
  readonly token: string;
  readonly expiresAt: number;
  readonly itemId: string;
  readonly quantity: number;
}

export interface Order {
  readonly ok: true;
  readonly orderId: string;
  readonly itemId: string;
  readonly quantity: number;
}

export interface Release {
  readonly ok: true;
  readonly itemId: string;
  readonly quantity: number;
}

/**
 * An administrative request that did not go through. `unavailable` means that nothing
 * changed; `incomplete` (a restock some slices could not take in time) says exactly what was
 * applied, and a retry with `idempotencyKey` applies only the rest; `unknown` means that
 * storage never said whether the change committed.
 */
export type AdminError = 'invalid' | 'conflict' | 'not_found' | 'unavailable' | 'incomplete' | 'unknown';

export interface AdminFailure {
  readonly ok: false;
  readonly error: AdminError;
  readonly message: string;
  /** Units of a restock that were applied, of `requested`. */
  readonly applied?: number;
  readonly requested?: number;
  /** The key to retry the request with, so that nothing is applied twice. */
  readonly idempotencyKey?: string;
}

/** The item view with what only an administrator sees (GET /admin/items/:id). */
export interface AdminItemView extends ItemView {
  /** Each slice's committed figures, and whether it serves now (false while it recovers). */
  readonly sliceFigures: readonly {
    readonly index: number;
    readonly stock: number;
    readonly available: number;
    readonly reserved: number;
    readonly sold: number;
    readonly serving: boolean;
  }[];
  /** Units on their way from one slice to another: on sale, in no slice's figures. */
  readonly inTransfer: number;
}

export type AdminResult<T> = { readonly ok: true; readonly value: T } | AdminFailure;

export interface PurchaseRequest {
  readonly itemId: string;
  readonly quantity: number;
  /**
   * The client's name for this purchase (1–64 characters). A retry with the same key by the
   * same user for the same item returns the original outcome (the same order, the same
   * reservation) instead of a second one or `limit_exceeded`.
   */
  readonly idempotencyKey?: string | undefined;
}

export { idempotencyKeyLengthMax, isIdempotencyKey } from '../domain/idempotency.js';
