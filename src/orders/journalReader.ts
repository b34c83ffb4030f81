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
 * Committed events of the slices after their positions, at most `eventsMax` in all, in sequence
 * order per slice. Each kind of row is read by one statement, so in one snapshot: a slice's
 * events commit in sequence order, one flush after the other, so what it returns has no gaps
 * behind it.
 *
 * The bound is over all the slices read, not per slice: a projection batch costs its size on
 * the event loop (its rows, its array literals, the reply that carries it), and a read over 200
 * slices bounded per slice returned 65,000 to 80,000 events at once under load, against 10,000
 * over one slice (`npm run bench:moment`'s many hot items). Each slice gets an equal share of
 * the bound in the statement; batch rows are then taken whole, one row of each slice in turn,
 * while the read stays within `eventsMax` events, so a row is decoded once however small the
 * share. A row larger than the bound alone is read alone.
 */
export async function readCommittedEvents(
  pool: pg.Pool,
  positions: readonly JournalPosition[],
  eventsMax: number,
): Promise<CommittedEvent[]> {
  if (positions.length === 0) return [];
  const sliceIds = positions.map((position) => position.sliceId);
  const afterSequences = positions.map((position) => position.afterSequence);
  const perSliceMax = Math.ceil(eventsMax / positions.length);
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
    [sliceIds, afterSequences, perSliceMax],
  );
  // Batch rows in order, until the events before a row reach the slice's share.
  const batches = await pool.query<{ slice_id: string; events: number; payload: Buffer }>(
    `SELECT position.slice_id, batch.events, batch.payload
       FROM unnest($1::bigint[], $2::bigint[]) AS position(slice_id, after_sequence)
      CROSS JOIN LATERAL (
            SELECT candidate.events, candidate.payload, candidate.first_sequence FROM (
                   SELECT journal_batch.events, journal_batch.payload, journal_batch.first_sequence,
                          sum(journal_batch.events) OVER (ORDER BY journal_batch.first_sequence) - journal_batch.events AS before
                     FROM seckill.journal_batch
                    WHERE journal_batch.slice_id = position.slice_id
                      AND journal_batch.last_sequence > position.after_sequence) AS candidate
             WHERE candidate.before < $3) AS batch
      ORDER BY position.slice_id, batch.first_sequence`,
    [sliceIds, afterSequences, perSliceMax],
  );
  const after = new Map(positions.map((position) => [position.sliceId, position.afterSequence]));
  const events: CommittedEvent[] = [];
  const legacyTaken = new Map<string, number>();
  for (const row of legacy.rows) {
    const sequence = Number(row.sequence);
    if (sequence <= (after.get(row.slice_id) ?? 0)) continue;
    legacyTaken.set(row.slice_id, (legacyTaken.get(row.slice_id) ?? 0) + 1);
    events.push({ sliceId: row.slice_id, sequence, event: eventFromRow(row) });
  }
  // A slice whose old rows filled its share may have more of them: its batch rows wait.
  const rowsOfSlice = new Map<string, { events: number; payload: Buffer }[]>();
  for (const row of batches.rows) {
    if ((legacyTaken.get(row.slice_id) ?? 0) >= perSliceMax) continue;
    let rows = rowsOfSlice.get(row.slice_id);
    if (rows === undefined) rowsOfSlice.set(row.slice_id, (rows = []));
    rows.push(row);
  }
  // One row of each slice in turn, so that each slice read holds a prefix of its rows; the first
  // row is taken whatever its size, so that a read always moves on.
  let taken = events.length;
  reading: for (let round = 0; ; round++) {
    let tookARow = false;
    for (const [sliceId, rows] of rowsOfSlice) {
      const row = rows[round];
      if (row === undefined) continue;
      if (taken > 0 && taken + row.events > eventsMax) break reading;
      const afterSequence = after.get(sliceId) ?? 0;
      for (const stored of decodeEvents(row.payload)) {
        if (stored.sequence > afterSequence) events.push({ sliceId, sequence: stored.sequence, event: stored.event });
      }
      taken += row.events;
      tookARow = true;
    }
    if (!tookARow) break;
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
