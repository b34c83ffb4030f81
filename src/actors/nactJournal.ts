/**
 * nact's persistence-engine interface, implemented over the batching journal. nact calls
 * `persist` once per event and awaits nothing else; the journal turns those calls into group
 * commits. Recovery (`latestSnapshot`, then `events(...).reduce`) reads the same tables.
 *
 * This file and the rest of src/actors/ are the only code that knows nact exists.
 */
import { StorageUnavailableError } from '../errors.js';
import type { SliceEvent, SliceSnapshot } from '../domain/slice.js';
import type { BatchingJournal } from '../persistence/journal.js';

/** The shape of nact's PersistedEvent that this engine reads. */
interface NactPersistedEvent {
  readonly data: SliceEvent;
  readonly sequenceNumber: number;
  readonly key: string;
}

interface NactPersistedSnapshot {
  readonly data: SliceSnapshot;
  readonly sequenceNumber: number;
  readonly key: string;
  readonly createdAt: number;
}

interface RecoveredEvent {
  readonly data: SliceEvent;
  readonly sequenceNumber: number;
  readonly key: string;
  readonly isDeleted: false;
}

export class NactJournal {
  constructor(private readonly journal: BatchingJournal) {}

  persist(persisted: NactPersistedEvent): Promise<void> {
    return this.journal.persist({ sliceId: persisted.key, sequence: persisted.sequenceNumber, event: persisted.data });
  }

  takeSnapshot(persisted: NactPersistedSnapshot): Promise<void> {
    return this.journal
      .takeSnapshot({
        sliceId: persisted.key,
        sequence: persisted.sequenceNumber,
        snapshot: persisted.data,
        createdAt: persisted.createdAt,
      })
      .catch((error: unknown) => {
        // A snapshot that did not commit costs only a longer replay next time; the slice's
        // own recovery handles the failed flush that took it down.
        if (!(error instanceof StorageUnavailableError)) throw error;
      });
  }

  /** Recovery starts here, so this is where the slice's journal is claimed (fenced) first. */
  async latestSnapshot(key: string): Promise<NactPersistedSnapshot | undefined> {
    await this.journal.claim(key);
    const stored = await this.journal.readSnapshot(key);
    return stored === undefined
      ? undefined
      : { data: stored.snapshot, sequenceNumber: stored.sequence, key, createdAt: 0 };
  }

  /** nact folds recovery with `events(key, offset).reduce(...)`, so the answer only has to reduce. */
  events(key: string, offset: number): { reduce<T>(reducer: (accumulator: T, event: RecoveredEvent, index: number) => T, initial: T): Promise<T> } {
    return {
      reduce: async (reducer, initial) => {
        const rows = await this.journal.readEvents(key, offset);
        return rows
          .map((row): RecoveredEvent => ({ data: row.event, sequenceNumber: row.sequence, key, isDeleted: false }))
          .reduce(reducer, initial);
      },
    };
  }
}
