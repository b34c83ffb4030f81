/**
 * The one statement that writes a batch of the journal, and what its failure means. Kept apart
 * from the batching (journal.ts), which decides when a batch is written and what its outcome
 * tells the slices.
 */
import pg from 'pg';
import type { FlushParameters } from './flushParameters.js';
import { integerArrayLiteral } from './journalRows.js';

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
 * One statement writes a whole batch: one journal batch row per slice (its payload cut out of
 * the one binary parameter); the slices' figures as guarded increments (the CHECK constraints
 * refuse any that would go negative or unbalance a slice), each only under the owner epoch this
 * writer claimed; and the snapshots. Order rows are not written here: the journal is their
 * outbox, and the projector (src/orders/projector.ts) writes them into the order databases
 * after the commit. A single statement is a transaction of its own, all or nothing, and costs
 * one round trip; its last line checks its own effects and raises, rolling everything back,
 * when they are off.
 */
const flushStatement = `
WITH journal_rows AS (
  INSERT INTO journal_batch (slice_id, first_sequence, last_sequence, events, payload)
  SELECT row.slice_id, row.first_sequence, row.last_sequence, row.events,
         substring($7::bytea FROM row.byte_offset + 1 FOR row.byte_length)
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::integer[], $5::integer[], $6::integer[])
         AS row(slice_id, first_sequence, last_sequence, events, byte_offset, byte_length)
  RETURNING 1
), slices AS (
  SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
         AS delta(slice_id, stock, available, reserved, sold, owner_epoch)
), inventory AS (
  UPDATE item_inventory AS slice
     SET stock = slice.stock + delta.stock,
         quantity = slice.quantity + delta.available,
         reserved = slice.reserved + delta.reserved,
         sold = slice.sold + delta.sold,
         modify_time = $14
    FROM slices AS delta
   WHERE slice.id = delta.slice_id AND slice.parent_id IS NOT NULL AND slice.owner_epoch = delta.owner_epoch
  RETURNING 1
), snapshots AS (
  INSERT INTO journal_snapshot (slice_id, sequence, data, created_at)
  SELECT snapshot.slice_id, snapshot.sequence,
         substring($17::bytea FROM snapshot.byte_offset + 1 FOR snapshot.byte_length), snapshot.created_at
    FROM unnest($15::bigint[], $16::bigint[], $18::bigint[], $19::integer[], $20::integer[])
         AS snapshot(slice_id, sequence, created_at, byte_offset, byte_length)
  ON CONFLICT (slice_id) DO UPDATE
     SET sequence = excluded.sequence, data = excluded.data, created_at = excluded.created_at
   WHERE journal_snapshot.sequence < excluded.sequence
  RETURNING 1
)
SELECT assert_true((SELECT count(*) FROM inventory) = cardinality($8::bigint[]),
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
      integers(journal.sliceIds), integers(journal.firstSequences), integers(journal.lastSequences),
      integers(journal.eventCounts), integers(journal.offsets), integers(journal.lengths),
      // A Buffer is sent as a binary parameter: PostgreSQL copies the bytes and parses nothing.
      journal.payload,
      integers(inventory.sliceIds), integers(inventory.stock), integers(inventory.available), integers(inventory.reserved),
      integers(inventory.sold), integers(inventory.epochs), nowMs,
      // The snapshots' bytes, like the journal rows': copied as they are, parsed by nobody.
      integers(snapshots.sliceIds), integers(snapshots.sequences), snapshots.payload,
      integers(snapshots.createdAt), integers(snapshots.offsets), integers(snapshots.lengths),
    ],
  };
}
