/**
 * Reading a slice's journal back: its snapshot, its events after a sequence, one row, and an
 * event found by the id it was persisted with. Plain queries, no state: the batching journal
 * (journal.ts) owns writing, fencing and what a read means.
 */
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
import { decodeEvents } from './journalBatch.js';
import { eventFromRow, snapshotFromBytes, type JournalRow } from './journalRows.js';
import type { FindableColumn, FindableKind, StoredEvent, StoredSnapshot } from './journalStore.js';

export type { FindableColumn, FindableKind, StoredEvent, StoredSnapshot } from './journalStore.js';


const rowColumns = 'sequence, kind, user_id, quantity, reservation_id, order_id, expires_at, at_ms, detail';

export async function readSnapshot(pool: pg.Pool, sliceId: string): Promise<StoredSnapshot | undefined> {
  const result = await pool.query<{ sequence: string; data: Buffer }>(
    'SELECT sequence, data FROM journal_snapshot WHERE slice_id = $1',
    [sliceId],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { sequence: Number(row.sequence), snapshot: snapshotFromBytes(row.data) };
}

/**
 * The slice's events after `afterSequence`, in sequence order: the per-event rows of an old data
 * directory first (they all precede the first batch row), then the batch rows, unpacked here.
 */
export async function readEvents(pool: pg.Pool, sliceId: string, afterSequence: number): Promise<StoredEvent[]> {
  const [legacy, batches] = await Promise.all([
    pool.query<JournalRow>(`SELECT ${rowColumns} FROM journal_event WHERE slice_id = $1 AND sequence > $2 ORDER BY sequence`, [
      sliceId,
      afterSequence,
    ]),
    pool.query<{ payload: Buffer }>(
      'SELECT payload FROM journal_batch WHERE slice_id = $1 AND last_sequence > $2 ORDER BY first_sequence',
      [sliceId, afterSequence],
    ),
  ]);
  const events = legacy.rows.map((row) => ({ sequence: Number(row.sequence), event: eventFromRow(row) }));
  for (const { payload } of batches.rows) {
    for (const stored of decodeEvents(payload)) if (stored.sequence > afterSequence) events.push(stored);
  }
  return events;
}

/** The event stored at `sequence` of the slice, if any. */
export async function readEventAt(pool: pg.Pool, sliceId: string, sequence: number): Promise<SliceEvent | undefined> {
  const batch = await pool.query<{ payload: Buffer }>(
    `SELECT payload FROM journal_batch WHERE slice_id = $1 AND first_sequence <= $2
      ORDER BY first_sequence DESC LIMIT 1`,
    [sliceId, sequence],
  );
  const payload = batch.rows[0]?.payload;
  if (payload !== undefined) {
    const found = decodeEvents(payload).find((stored) => stored.sequence === sequence);
    if (found !== undefined) return found.event;
  }
  const legacy = await pool.query<JournalRow>(`SELECT ${rowColumns} FROM journal_event WHERE slice_id = $1 AND sequence = $2`, [
    sliceId,
    sequence,
  ]);
  const row = legacy.rows[0];
  return row === undefined ? undefined : eventFromRow(row);
}

const idOf: Record<FindableColumn, (event: SliceEvent) => string | undefined> = {
  order_id: (event) => ('orderId' in event ? event.orderId : undefined),
  reservation_id: (event) => ('reservationId' in event ? event.reservationId : undefined),
};

/**
 * The committed event of `kind` whose `column` holds `id`, among the slice's events after its
 * `afterVersion`-th committed one: the k-th committed event has a sequence of at least k, so
 * the search reads a range of the primary key, from where the caller last saw the slice. A rare
 * read (a request whose outcome was lost), so the batches are unpacked here rather than indexed.
 */
export async function findEvent(
  pool: pg.Pool,
  sliceId: string,
  afterVersion: number,
  kind: FindableKind,
  column: FindableColumn,
  id: string,
): Promise<SliceEvent | undefined> {
  for (const stored of await readEvents(pool, sliceId, afterVersion)) {
    if (stored.event.kind === kind && idOf[column](stored.event) === id) return stored.event;
  }
  return undefined;
}

/**
 * The slice's events after `afterSequence`, in sequence order, a page at a time, so a long
 * journal never sits in memory whole: for replay and verification.
 */
export async function* readEventPages(
  pool: pg.Pool,
  sliceId: string,
  afterSequence: number,
  eventsPerPage = 10_000,
): AsyncGenerator<StoredEvent[]> {
  let after = afterSequence;
  for (;;) {
    const legacy = await pool.query<JournalRow>(
      `SELECT ${rowColumns} FROM journal_event WHERE slice_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3`,
      [sliceId, after, eventsPerPage],
    );
    if (legacy.rows.length === 0) break;
    const page = legacy.rows.map((row) => ({ sequence: Number(row.sequence), event: eventFromRow(row) }));
    after = page[page.length - 1]!.sequence;
    yield page;
  }
  for (;;) {
    // A batch row holds up to a flush's worth of events; a few rows make a page.
    const batches = await pool.query<{ payload: Buffer }>(
      'SELECT payload FROM journal_batch WHERE slice_id = $1 AND last_sequence > $2 ORDER BY first_sequence LIMIT 16',
      [sliceId, after],
    );
    if (batches.rows.length === 0) return;
    const page: StoredEvent[] = [];
    for (const { payload } of batches.rows) {
      for (const stored of decodeEvents(payload)) if (stored.sequence > after) page.push(stored);
    }
    if (page.length === 0) return;
    after = page[page.length - 1]!.sequence;
    yield page;
  }
}
