/**
 * The journal store of the simulation: the journals in memory, and every operation on them
 * held as pending until the simulation's scheduler completes it, in an order and with an
 * outcome the seed chooses: committed, refused (rolled back), its answer lost before or after
 * it committed (in doubt), or the store down. A statement that outlived its client (an engine
 * that crashed) can still be completed later: the owner epoch fences it as PostgreSQL does.
 *
 * It enforces nothing else: an oversell the engine lets through is stored, so that the
 * simulation's checks find it, rather than being refused here and hidden.
 */
import type { SliceEvent } from '../domain/slice.js';
import { sameEvent } from '../persistence/journalRows.js';
import {
  WriteInDoubtError,
  type FindableColumn,
  type FindableKind,
  type FlushBatch,
  type JournalStore,
  type StoredEvent,
  type StoredSnapshot,
} from '../persistence/journalStore.js';

export type WriteOutcome = 'commit' | 'refuse' | 'lostBeforeCommit' | 'lostAfterCommit';
export type ReadOutcome = 'answer' | 'refuse';

interface StoredSlice {
  epoch: number;
  readonly events: StoredEvent[];
  snapshot: StoredSnapshot | undefined;
}

export interface PendingOperation {
  readonly kind: 'write' | 'claim' | 'read';
  readonly generation: number;
  /** Completes the operation with the outcome the scheduler chose. */
  complete(outcome: WriteOutcome | ReadOutcome): void;
}

/** Told after every committed write, with what it committed. */
export type CommitListener = (events: readonly { sliceId: string; sequence: number; event: SliceEvent }[]) => void;

export class MemoryJournalStore {
  private readonly slices = new Map<string, StoredSlice>();
  readonly pending: PendingOperation[] = [];
  private readonly deadGenerations = new Set<number>();
  commits = 0;
  onCommit: CommitListener = () => undefined;

  /** A slice's first event, written as the catalog writes it when an item is created. */
  define(sliceId: string, event: SliceEvent): void {
    this.slices.set(sliceId, { epoch: 0, events: [{ sequence: 1, event }], snapshot: undefined });
    this.commits++;
    this.onCommit([{ sliceId, sequence: 1, event }]);
  }

  eventsOf(sliceId: string): readonly StoredEvent[] {
    return this.slices.get(sliceId)?.events ?? [];
  }

  sliceIds(): string[] {
    return [...this.slices.keys()];
  }

  /** The operations of an engine that crashed never complete from its side again. */
  kill(generation: number): void {
    this.deadGenerations.add(generation);
  }

  /** The store as one engine process (`generation`) sees it. */
  connect(generation: number): JournalStore {
    const enqueue = <T>(kind: PendingOperation['kind'], run: (outcome: WriteOutcome | ReadOutcome) => T | Promise<T>): Promise<T> => {
      // A crashed engine sends nothing more.
      if (this.deadGenerations.has(generation)) return new Promise<T>(() => undefined);
      return new Promise<T>((resolve, reject) => {
        this.pending.push({
          kind,
          generation,
          complete: (outcome) => {
            try {
              Promise.resolve(run(outcome)).then(resolve, reject);
            } catch (error) {
              reject(error);
            }
          },
        });
      });
    };
    const refused = (what: string): Error => Object.assign(new Error(`${what} refused on purpose`), { simulated: true });
    return {
      write: (batch) => enqueue('write', (outcome) => this.write(batch, outcome as WriteOutcome)),
      claim: (sliceId) =>
        enqueue('claim', (outcome) => {
          if (outcome === 'refuse') throw refused('claim');
          const slice = this.slices.get(sliceId);
          if (slice === undefined) throw new Error(`slice ${sliceId} has no inventory row`);
          slice.epoch++;
          return slice.epoch;
        }),
      readSnapshot: (sliceId) =>
        enqueue('read', (outcome) => {
          if (outcome === 'refuse') throw refused('read');
          return this.slices.get(sliceId)?.snapshot;
        }),
      readEvents: (sliceId, afterSequence) =>
        enqueue('read', (outcome) => {
          if (outcome === 'refuse') throw refused('read');
          return (this.slices.get(sliceId)?.events ?? []).filter((stored) => stored.sequence > afterSequence);
        }),
      holdsEventAt: (sliceId, sequence, event) =>
        enqueue('read', (outcome) => {
          if (outcome === 'refuse') throw refused('read');
          const stored = this.slices.get(sliceId)?.events.find((candidate) => candidate.sequence === sequence);
          return stored !== undefined && sameEvent(stored.event, event);
        }),
      findEvent: (sliceId, afterVersion, kind: FindableKind, column: FindableColumn, id) =>
        enqueue('read', (outcome) => {
          if (outcome === 'refuse') throw refused('read');
          const key = column === 'order_id' ? 'orderId' : 'reservationId';
          return (this.slices.get(sliceId)?.events ?? []).find(
            (stored) => stored.sequence > afterVersion && stored.event.kind === kind && (stored.event as unknown as Record<string, unknown>)[key] === id,
          )?.event;
        }),
      release: async () => undefined,
    };
  }

  private write(batch: FlushBatch, outcome: WriteOutcome): void {
    if (outcome === 'refuse') throw Object.assign(new Error('flush refused on purpose'), { simulated: true });
    if (outcome === 'lostBeforeCommit') throw new WriteInDoubtError('the answer was lost before the commit (simulated)');
    // The owner-epoch fence, in the same statement as the write: all or nothing.
    const touched = new Set([...batch.events.map((entry) => entry.sliceId), ...batch.snapshots.map((entry) => entry.sliceId)]);
    for (const sliceId of touched) {
      const slice = this.slices.get(sliceId);
      if (slice === undefined || slice.epoch !== batch.epochOf(sliceId)) {
        throw Object.assign(new Error(`slice ${sliceId}: a newer owner epoch`), { simulated: true });
      }
    }
    const written: { sliceId: string; sequence: number; event: SliceEvent }[] = [];
    for (const { sliceId, sequence, event } of batch.events) {
      const slice = this.slices.get(sliceId)!;
      const last = slice.events[slice.events.length - 1]?.sequence ?? 0;
      // The primary key: a sequence taken twice rolls the statement back.
      if (sequence <= last) throw Object.assign(new Error(`slice ${sliceId}: sequence ${sequence} exists`), { simulated: true });
      written.push({ sliceId, sequence, event });
    }
    for (const entry of written) this.slices.get(entry.sliceId)!.events.push({ sequence: entry.sequence, event: entry.event });
    for (const { sliceId, sequence, snapshot } of batch.snapshots) {
      const slice = this.slices.get(sliceId)!;
      if (slice.snapshot === undefined || slice.snapshot.sequence < sequence) slice.snapshot = { sequence, snapshot: structuredClone(snapshot) };
    }
    this.commits++;
    this.onCommit(written);
    if (outcome === 'lostAfterCommit') throw new WriteInDoubtError('the answer was lost after the commit (simulated)');
  }
}
