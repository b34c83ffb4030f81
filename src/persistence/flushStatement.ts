/**
 * The one statement that writes a batch of the journal, and what its failure means. Kept apart
 * from the batching (journal.ts), which decides when a batch is written and what its outcome
 * tells the slices.
 */
import pg from 'pg';
import { integerArrayLiteral, textArrayLiteral, type FlushParameters } from './journalRows.js';

/**
 * An error PostgreSQL sent about the statement itself (a constraint, a raised exception, bad
 * data, the statement timeout): the statement rolled back. Connection exceptions (08), operator
 * intervention such as a shutdown (57), system errors (58, XX) and anything that is not
 * PostgreSQL's answer at all (the client's own query timeout among them) leave the outcome in
 * doubt.
 */
export function isDefiniteRollback(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError)) return false;
  // The statement timeout cancelled the statement, which rolled it back.
  if (error.code === '57014') return true;
  return !['08', '57', '58', 'XX'].includes((error.code ?? 'XX').slice(0, 2));
}

/**
 * One statement writes a whole batch: the journal rows; the slices' figures as guarded
 * increments (the CHECK constraints refuse any that would go negative or unbalance a slice);
 * and the snapshots. Order rows are not written here: the journal is their outbox, and the
 * projector (src/orders/projector.ts) writes them into the order databases after the commit.
 * A single statement is a transaction of its own, all or nothing, and costs one round trip;
 * its last line checks its own effects and raises, rolling everything back, when they are off.
 */
const flushStatement = `
WITH journal_rows AS (
  INSERT INTO journal (slice_id, sequence, kind, user_id, quantity, reservation_id, order_id, expires_at, at_ms, detail)
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                       $7::bigint[], $8::bigint[], $9::bigint[], $10::jsonb[])
  RETURNING 1
), slices AS (
  SELECT * FROM unnest($11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $21::bigint[])
         AS delta(slice_id, stock, available, reserved, sold, owner_epoch)
), inventory AS (
  UPDATE item_inventory AS slice
     SET stock = slice.stock + delta.stock,
         quantity = slice.quantity + delta.available,
         reserved = slice.reserved + delta.reserved,
         sold = slice.sold + delta.sold,
         modify_time = $16
    FROM slices AS delta
   WHERE slice.id = delta.slice_id AND slice.parent_id IS NOT NULL AND slice.owner_epoch = delta.owner_epoch
  RETURNING 1
), snapshots AS (
  INSERT INTO journal_snapshot (slice_id, sequence, data, created_at)
  SELECT * FROM unnest($17::bigint[], $18::bigint[], $19::jsonb[], $20::bigint[])
  ON CONFLICT (slice_id) DO UPDATE
     SET sequence = excluded.sequence, data = excluded.data, created_at = excluded.created_at
   WHERE journal_snapshot.sequence < excluded.sequence
  RETURNING 1
)
SELECT assert_true((SELECT count(*) FROM inventory) = cardinality($11::bigint[]),
                   'a slice of the batch has no inventory row, or a newer owner epoch')
   AND assert_true((SELECT count(*) FROM journal_rows) = cardinality($1::bigint[]),
                   'the batch did not write every journal row') AS written`;

/**
 * Writes one batch with one statement, inside the caller's transaction: the journal rows, the
 * slices' figures and the snapshots. The caller commits.
 */
export async function writeBatch(client: pg.ClientBase, parameters: FlushParameters, nowMs: number): Promise<void> {
  await client.query(flushQuery(parameters, nowMs));
}

export function flushQuery(parameters: FlushParameters, nowMs: number): pg.QueryConfig {
  const { journal, inventory, snapshots } = parameters;
  const integers = integerArrayLiteral;
  return {
    name: 'journal-flush',
    text: flushStatement,
    values: [
      integers(journal.sliceIds), integers(journal.sequences), textArrayLiteral(journal.kinds),
      integers(journal.userIds), integers(journal.quantities), integers(journal.reservationIds),
      integers(journal.orderIds), integers(journal.expiresAts), integers(journal.atMs), textArrayLiteral(journal.details),
      integers(inventory.sliceIds), integers(inventory.stock), integers(inventory.available), integers(inventory.reserved),
      integers(inventory.sold), nowMs,
      integers(snapshots.sliceIds), integers(snapshots.sequences), textArrayLiteral(snapshots.data),
      integers(snapshots.createdAt), integers(inventory.epochs),
    ],
  };
}
