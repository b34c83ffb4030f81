/**
 * The types of the engine's public API: its options, and what its calls resolve to.
 */
import type { Clock } from '../clock.js';
import type { StoredOrder } from '../persistence/catalog.js';
import type { FlushReport } from '../persistence/journal.js';

export interface EngineOptions {
  /**
   * The primary PostgreSQL database: the catalog, the blocklist, and the first inventory
   * database. Unset: an embedded PostgreSQL in `dataDirectory`, with two inventory databases.
   */
  readonly databaseUrl?: string | undefined;
  /** Further inventory databases, over which the slices of an item are spread with the primary's. */
  readonly extraInventoryDatabaseUrls?: readonly string[] | undefined;
  /** Where the embedded PostgreSQL keeps its data; default `./.seckill`. */
  readonly dataDirectory?: string | undefined;
  readonly clock?: Clock;
  /** Events written by one journal transaction at most. */
  readonly flushEventsMax?: number;
  readonly snapshotEvery?: number;
  readonly mailboxDepthMax?: number;
  /**
   * Worker threads hosting the slices (piscina). 0 runs every slice in this thread, which on a
   * 2-core machine is the fastest for one hot item (see bench/shards.ts).
   */
  readonly shards?: number;
  /** Slices of an item created without `slices`: the engine's choice. */
  readonly defaultSlices?: number;
  /** Engine process number (0..99), kept in the order ids so several processes never collide. */
  readonly nodeId?: number;
  readonly log?: EngineLog;
  /** Told about every journal flush: batch size and duration, for metrics and benchmarks. */
  readonly onFlush?: (report: FlushReport) => void;
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

export type OrderView = StoredOrder;

/** An administrative request that did not go through. */
export interface AdminFailure {
  readonly ok: false;
  readonly error: 'invalid' | 'conflict' | 'not_found' | 'unavailable';
  readonly message: string;
}

export type AdminResult<T> = { readonly ok: true; readonly value: T } | AdminFailure;

export interface PurchaseRequest {
  readonly itemId: string;
  readonly quantity: number;
}
