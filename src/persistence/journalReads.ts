/**
 * Reading a slice's journal back: its snapshot, its events after a sequence, one row, and an
 * event found by the id it was persisted with. Plain queries, no state: the batching journal
 * (journal.ts) owns writing, fencing and what a read means.
 */
import type pg from 'pg';
import type { SliceEvent, SliceSnapshot } from '../domain/slice.js';
import { eventFromRow, type JournalRow } from './journalRows.js';
import type { FindableColumn, FindableKind, StoredEvent, StoredSnapshot } from './journalStore.js';

export type { FindableColumn, FindableKind, StoredEvent, StoredSnapshot } from './journalStore.js';


const rowColumns = 'sequence, kind, user_id, quantity, reservation_id, order_id, expires_at, at_ms, detail';

export async function readSnapshot(pool: pg.Pool, sliceId: string): Promise<StoredSnapshot | undefined> {
  const result = await pool.query<{ sequence: string; data: SliceSnapshot }>(
    'SELECT sequence, data FROM journal_snapshot WHERE slice_id = $1',
    [sliceId],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { sequence: Number(row.sequence), snapshot: row.data };
}

export async function readEvents(pool: pg.Pool, sliceId: string, afterSequence: number): Promise<StoredEvent[]> {
  const result = await pool.query<JournalRow>(
    `SELECT ${rowColumns} FROM journal WHERE slice_id = $1 AND sequence > $2 ORDER BY sequence`,
    [sliceId, afterSequence],
  );
  return result.rows.map((row) => ({ sequence: Number(row.sequence), event: eventFromRow(row) }));
}

export async function readRowAt(pool: pg.Pool, sliceId: string, sequence: number): Promise<JournalRow | undefined> {
  const result = await pool.query<JournalRow>(`SELECT ${rowColumns} FROM journal WHERE slice_id = $1 AND sequence = $2`, [
    sliceId,
    sequence,
  ]);
  return result.rows[0];
}

/**
 * The committed event of `kind` whose `column` holds `id`, among the slice's events after its
 * `afterVersion`-th committed one: the k-th committed event has a sequence of at least k, so
 * the search is a range of the primary key, from where the caller last saw the slice.
 */
export async function findEvent(
  pool: pg.Pool,
  sliceId: string,
  afterVersion: number,
  kind: FindableKind,
  column: FindableColumn,
  id: string,
): Promise<SliceEvent | undefined> {
  const result = await pool.query<JournalRow>(
    `SELECT ${rowColumns} FROM journal WHERE slice_id = $1 AND sequence > $2 AND kind = $3 AND ${column} = $4`,
    [sliceId, afterVersion, kind, id],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : eventFromRow(row);
}
