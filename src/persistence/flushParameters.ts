/**
 * Turns a batch of journal entries into the parameters of the single flush statement
 * (flushStatement.ts). Pure: no I/O, no clock, so it is unit-tested without a database.
 *
 * Each slice's events of the batch become one journal batch row (journalBatch.ts); the rows'
 * payloads travel concatenated in one binary parameter, which PostgreSQL takes as it is, and
 * everything else as parallel arrays that the statement spreads back into rows with `unnest`:
 * a batch of any size is one statement with a fixed number of parameters.
 */
import { Buffer } from 'node:buffer';
import { assertNever } from '../domain/reasons.js';
import type { SliceEvent } from '../domain/slice.js';
import { encodeEvents, type EncodableEvent } from './journalBatch.js';
import { snapshotBytes, type JournalEvent, type JournalSnapshot } from './journalRows.js';

export interface FlushParameters {
  /** One journal batch row per slice with events in the batch. */
  readonly journal: {
    sliceIds: string[];
    firstSequences: number[];
    lastSequences: number[];
    eventCounts: number[];
    /** Where each row's payload starts in `payload`, and its length, in bytes. */
    offsets: number[];
    lengths: number[];
    payload: Buffer;
  };
  /** Net change of each touched slice's figures over the batch, one entry per slice. */
  readonly inventory: {
    sliceIds: string[];
    /** The epoch the slice's row must still hold for the flush to commit (see `buildFlushParameters`). */
    epochs: number[];
    stock: number[];
    available: number[];
    reserved: number[];
    sold: number[];
  };
  /** The newest snapshot of each slice that took one; their bytes travel like the journal rows'. */
  readonly snapshots: {
    sliceIds: string[];
    sequences: number[];
    createdAt: number[];
    offsets: number[];
    lengths: number[];
    payload: Buffer;
  };
}

export interface FigureDelta {
  stock: number;
  available: number;
  reserved: number;
  sold: number;
}

/** How one event moves its slice's figures; the SQL side applies these as guarded increments. */
export function figureDelta(event: SliceEvent): FigureDelta {
  switch (event.kind) {
    case 'defined':
      return { stock: event.stock, available: event.stock, reserved: 0, sold: 0 };
    case 'restocked':
      return { stock: event.quantity, available: event.quantity, reserved: 0, sold: 0 };
    case 'amended':
      return { stock: 0, available: 0, reserved: 0, sold: 0 };
    case 'reserved':
      return { stock: 0, available: -event.quantity, reserved: event.quantity, sold: 0 };
    case 'confirmed':
      return { stock: 0, available: 0, reserved: -event.quantity, sold: event.quantity };
    case 'cancelled':
    case 'expired':
      return { stock: 0, available: event.quantity, reserved: -event.quantity, sold: 0 };
    case 'purchased':
      return { stock: 0, available: -event.quantity, reserved: 0, sold: event.quantity };
    case 'transferred_out':
      return { stock: -event.quantity, available: -event.quantity, reserved: 0, sold: 0 };
    case 'transferred_in':
      return { stock: event.quantity, available: event.quantity, reserved: 0, sold: 0 };
    case 'transfer_settled':
      return { stock: 0, available: 0, reserved: 0, sold: 0 };
    case 'order_cancelled':
      return { stock: 0, available: event.quantity, reserved: 0, sold: -event.quantity };
    default:
      return assertNever(event);
  }
}

export function buildFlushParameters(
  events: readonly JournalEvent[],
  snapshots: readonly JournalSnapshot[],
  /**
   * The epoch under which this process owns each slice's journal. The flush writes only where the
   * slice's row still holds that epoch, so a writer that lost the slice (a statement that outlived
   * its client, a worker replaced) cannot commit beside the new owner.
   */
  epochOf: (sliceId: string) => number,
): FlushParameters {
  const eventsOfSlice = new Map<string, EncodableEvent[]>();
  const deltas = new Map<string, FigureDelta>();

  for (const entry of events) {
    const { sliceId, event } = entry;
    const ofSlice = eventsOfSlice.get(sliceId);
    if (ofSlice === undefined) eventsOfSlice.set(sliceId, [entry]);
    else ofSlice.push(entry);

    const change = figureDelta(event);
    const total = deltas.get(sliceId);
    if (total === undefined) {
      deltas.set(sliceId, { ...change });
    } else {
      total.stock += change.stock;
      total.available += change.available;
      total.reserved += change.reserved;
      total.sold += change.sold;
    }
  }

  const journalRows: Pick<FlushParameters['journal'], 'sliceIds' | 'firstSequences' | 'lastSequences' | 'eventCounts'> = {
    sliceIds: [],
    firstSequences: [],
    lastSequences: [],
    eventCounts: [],
  };
  const journalPayloads = new LaidEndToEnd();
  for (const [sliceId, ofSlice] of eventsOfSlice) {
    journalRows.sliceIds.push(sliceId);
    journalRows.firstSequences.push(ofSlice[0]!.sequence);
    journalRows.lastSequences.push(ofSlice[ofSlice.length - 1]!.sequence);
    journalRows.eventCounts.push(ofSlice.length);
    journalPayloads.add(encodeEvents(ofSlice));
  }

  // A slice with only a snapshot in the batch is fenced like the others: its row is touched
  // with a change of nothing, under its epoch.
  for (const snapshot of snapshots) {
    if (!deltas.has(snapshot.sliceId)) deltas.set(snapshot.sliceId, { stock: 0, available: 0, reserved: 0, sold: 0 });
  }

  const inventory: FlushParameters['inventory'] = {
    sliceIds: [],
    epochs: [],
    stock: [],
    available: [],
    reserved: [],
    sold: [],
  };
  for (const [sliceId, delta] of deltas) {
    inventory.sliceIds.push(sliceId);
    inventory.epochs.push(epochOf(sliceId));
    inventory.stock.push(delta.stock);
    inventory.available.push(delta.available);
    inventory.reserved.push(delta.reserved);
    inventory.sold.push(delta.sold);
  }

  // Only the newest snapshot of a slice in the batch is worth writing.
  const newest = new Map<string, JournalSnapshot>();
  for (const snapshot of snapshots) {
    const previous = newest.get(snapshot.sliceId);
    if (previous === undefined || previous.sequence < snapshot.sequence) newest.set(snapshot.sliceId, snapshot);
  }
  const snapshotRows: Pick<FlushParameters['snapshots'], 'sliceIds' | 'sequences' | 'createdAt'> = {
    sliceIds: [],
    sequences: [],
    createdAt: [],
  };
  const snapshotPayloads = new LaidEndToEnd();
  for (const snapshot of newest.values()) {
    snapshotRows.sliceIds.push(snapshot.sliceId);
    snapshotRows.sequences.push(snapshot.sequence);
    snapshotRows.createdAt.push(snapshot.createdAt);
    snapshotPayloads.add(snapshotBytes(snapshot.snapshot));
  }

  return {
    journal: { ...journalRows, ...journalPayloads.parameters() },
    inventory,
    snapshots: { ...snapshotRows, ...snapshotPayloads.parameters() },
  };
}

/**
 * Byte strings laid end to end in one binary parameter, each found again by its offset and
 * length: the statement cuts them out with `substring`, and PostgreSQL parses none of them.
 */
class LaidEndToEnd {
  private readonly parts: Buffer[] = [];
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  private size = 0;

  add(bytes: Buffer): void {
    this.parts.push(bytes);
    this.offsets.push(this.size);
    this.lengths.push(bytes.length);
    this.size += bytes.length;
  }

  parameters(): { offsets: number[]; lengths: number[]; payload: Buffer } {
    return { offsets: this.offsets, lengths: this.lengths, payload: Buffer.concat(this.parts, this.size) };
  }
}

