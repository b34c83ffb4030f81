/**
 * What the batching journal (journal.ts) needs from a database, and nothing else: write one
 * batch under each slice's owner epoch, raise a slice's epoch, and read a slice back.
 *
 * The journal owns batching, failure, the in-doubt rules and what a read means; a store only
 * moves rows. PostgreSQL is the store in production (postgresJournalStore.ts); the simulation
 * puts an in-memory store here that fails, loses answers and goes away on purpose.
 */
import type { SliceEvent, SliceSnapshot } from '../domain/slice.js';
import type { JournalEvent, JournalSnapshot } from './journalRows.js';

export interface StoredSnapshot {
  readonly sequence: number;
  readonly snapshot: SliceSnapshot;
}

export interface StoredEvent {
  readonly sequence: number;
  readonly event: SliceEvent;
}

export type FindableKind = 'purchased' | 'reserved' | 'confirmed' | 'cancelled';
export type FindableColumn = 'order_id' | 'reservation_id';

/** One group commit: every event and snapshot in it commits, or none does. */
export interface FlushBatch {
  readonly events: readonly JournalEvent[];
  readonly snapshots: readonly JournalSnapshot[];
  /**
   * The owner epoch under which this journal writes each slice. The batch commits only where
   * every slice it touches still holds that epoch, so a writer that lost a slice (a statement
   * that outlived its client, a replaced worker) cannot commit beside the new owner.
   */
  readonly epochOf: (sliceId: string) => number;
  /** The time the batch was taken, stored as the slices' modification time. */
  readonly nowMs: number;
}

/**
 * The batch's outcome was lost: it was sent and no answer came back (the connection broke, the
 * client gave up waiting). It may have committed. Any other error from `write` means it did not.
 */
export class WriteInDoubtError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WriteInDoubtError';
  }
}

export interface JournalStore {
  /**
   * Writes the batch atomically. Rejects with `WriteInDoubtError` when the outcome is not known,
   * and with any other error when nothing was written.
   */
  write(batch: FlushBatch): Promise<void>;
  /**
   * Raises the slice's owner epoch and returns the new one. A write of an earlier epoch that is
   * still running ends before the raise returns; one that arrives later is refused.
   */
  claim(sliceId: string): Promise<number>;
  readSnapshot(sliceId: string): Promise<StoredSnapshot | undefined>;
  /** The slice's events after `afterSequence`, in sequence order. */
  readEvents(sliceId: string, afterSequence: number): Promise<StoredEvent[]>;
  /** Whether the event stored at `sequence` of the slice is exactly `event` (ids and times too). */
  holdsEventAt(sliceId: string, sequence: number, event: SliceEvent): Promise<boolean>;
  /**
   * The committed event of `kind` whose `column` holds `id`, among the slice's events after its
   * `afterVersion`-th committed one (the k-th committed event has a sequence of at least k).
   */
  findEvent(sliceId: string, afterVersion: number, kind: FindableKind, column: FindableColumn, id: string): Promise<SliceEvent | undefined>;
  /** Lets go of whatever the store holds open for writing; it may be used again afterwards. */
  release(): Promise<void>;
}
