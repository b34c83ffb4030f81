/**
 * The projector's only view of the journal: what each slice has committed after a position.
 * When the journal's shape changes (one row per batch, say), these two functions change and
 * nothing else in src/orders/ does.
 */
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
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
  const result = await pool.query<JournalRow & { slice_id: string }>(
    `SELECT position.slice_id, event.sequence, event.kind, event.user_id, event.quantity, event.reservation_id,
            event.order_id, event.expires_at, event.at_ms, event.detail
       FROM unnest($1::bigint[], $2::bigint[]) AS position(slice_id, after_sequence)
      CROSS JOIN LATERAL (
            SELECT * FROM seckill.journal
             WHERE journal.slice_id = position.slice_id AND journal.sequence > position.after_sequence
             ORDER BY journal.sequence LIMIT $3) AS event
      ORDER BY position.slice_id, event.sequence`,
    [positions.map((position) => position.sliceId), positions.map((position) => position.afterSequence), eventsPerSliceMax],
  );
  return result.rows.map((row) => ({ sliceId: row.slice_id, sequence: Number(row.sequence), event: eventFromRow(row) }));
}

/** The last committed sequence of each slice (0 for a slice with no events). */
export async function readJournalHeads(pool: pg.Pool, sliceIds: readonly string[]): Promise<Map<string, number>> {
  if (sliceIds.length === 0) return new Map();
  const result = await pool.query<{ slice_id: string; head: string }>(
    `SELECT slice.slice_id,
            coalesce((SELECT max(sequence) FROM seckill.journal WHERE journal.slice_id = slice.slice_id), 0) AS head
       FROM unnest($1::bigint[]) AS slice(slice_id)`,
    [sliceIds],
  );
  return new Map(result.rows.map((row) => [row.slice_id, Number(row.head)]));
}
