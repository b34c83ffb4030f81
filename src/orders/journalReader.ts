/**
 * The projector's only view of the journal: what each slice has committed after a position.
 * When the journal's shape changes (one row per batch, say), these two functions change and
 * nothing else in src/orders/ does.
 */
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
import { decodeEvents } from '../persistence/journalBatch.js';
import { eventFromRow, type JournalRow } from '../persistence/journalRows.js';

export interface JournalPosition {
  readonly sliceId: string;
  /** The last sequence already taken in; events after it are read. */
  readonly afterSequence: number;
}

export interface CommittedEvent {
  readonly sliceId: string;
  readonly sequence: number;
  readonly event: SliceEvent;
}

/**
 * Committed events of each slice after its position, at most `eventsPerSliceMax` of each, in
 * sequence order per slice. One statement, so one snapshot: a slice's events commit in
 * sequence order, one flush after the other, so what it returns has no gaps behind it.
 */
export async function readCommittedEvents(
  pool: pg.Pool,
  positions: readonly JournalPosition[],
  eventsPerSliceMax: number,
): Promise<CommittedEvent[]> {
  if (positions.length === 0) return [];
  const sliceIds = positions.map((position) => position.sliceId);
  const afterSequences = positions.map((position) => position.afterSequence);
  // Rows of an old data directory, one per event, precede every batch row of their slice and
  // are never written again, so reading them apart from the batches leaves no gap.
  const legacy = await pool.query<JournalRow & { slice_id: string }>(
    `SELECT position.slice_id, event.sequence, event.kind, event.user_id, event.quantity, event.reservation_id,
            event.order_id, event.expires_at, event.at_ms, event.detail
       FROM unnest($1::bigint[], $2::bigint[]) AS position(slice_id, after_sequence)
      CROSS JOIN LATERAL (
            SELECT * FROM seckill.journal_event
             WHERE journal_event.slice_id = position.slice_id AND journal_event.sequence > position.after_sequence
             ORDER BY journal_event.sequence LIMIT $3) AS event
      ORDER BY position.slice_id, event.sequence`,
    [sliceIds, afterSequences, eventsPerSliceMax],
  );
  // Batch rows in order, until the events before a row reach the bound.
  const batches = await pool.query<{ slice_id: string; payload: Buffer }>(
    `SELECT position.slice_id, batch.payload
       FROM unnest($1::bigint[], $2::bigint[]) AS position(slice_id, after_sequence)
      CROSS JOIN LATERAL (
            SELECT candidate.payload, candidate.first_sequence FROM (
                   SELECT journal_batch.payload, journal_batch.first_sequence,
                          sum(journal_batch.events) OVER (ORDER BY journal_batch.first_sequence) - journal_batch.events AS before
                     FROM seckill.journal_batch
                    WHERE journal_batch.slice_id = position.slice_id
                      AND journal_batch.last_sequence > position.after_sequence) AS candidate
             WHERE candidate.before < $3) AS batch
      ORDER BY position.slice_id, batch.first_sequence`,
    [sliceIds, afterSequences, eventsPerSliceMax],
  );
  const after = new Map(positions.map((position) => [position.sliceId, position.afterSequence]));
  const taken = new Map<string, number>();
  const events: CommittedEvent[] = [];
  const take = (sliceId: string, sequence: number, event: SliceEvent): void => {
    const count = taken.get(sliceId) ?? 0;
    if (count >= eventsPerSliceMax || sequence <= (after.get(sliceId) ?? 0)) return;
    taken.set(sliceId, count + 1);
    events.push({ sliceId, sequence, event });
  };
  for (const row of legacy.rows) take(row.slice_id, Number(row.sequence), eventFromRow(row));
  for (const row of batches.rows) {
    for (const stored of decodeEvents(row.payload)) take(row.slice_id, stored.sequence, stored.event);
  }
  return events;
}

/** The last committed sequence of each slice (0 for a slice with no events). */
export async function readJournalHeads(pool: pg.Pool, sliceIds: readonly string[]): Promise<Map<string, number>> {
  if (sliceIds.length === 0) return new Map();
  const result = await pool.query<{ slice_id: string; head: string }>(
    `SELECT slice.slice_id,
            greatest((SELECT max(last_sequence) FROM seckill.journal_batch WHERE journal_batch.slice_id = slice.slice_id),
                     (SELECT max(sequence) FROM seckill.journal_event WHERE journal_event.slice_id = slice.slice_id),
                     0) AS head
       FROM unnest($1::bigint[]) AS slice(slice_id)`,
    [sliceIds],
  );
  return new Map(result.rows.map((row) => [row.slice_id, Number(row.head)]));
}
