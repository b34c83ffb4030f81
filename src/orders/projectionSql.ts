/**
 * The statements that write a projection batch into one order database. Pure: they only build
 * text and parameters, so their shape is unit-tested without a database.
 *
 * The main statement inserts the batch's orders into the tables their digits name (skipping any
 * already there, in the recent table or in history, so a batch written twice doubles nothing),
 * marks cancelled the orders of earlier batches that are still recent, and moves the
 * database's positions by compare-and-set: if another projector moved one, the statement
 * raises and the whole batch rolls back.
 *
 * Cancellations of orders that the history job has moved are written by a second statement in
 * the same transaction. Under READ COMMITTED each statement sees what was committed when it
 * started, so an order moved while the first statement waited for it is seen in history by the
 * second; in one statement it could be missed in both.
 */
import type pg from 'pg';
import { integerArrayLiteral as integers } from '../persistence/journalRows.js';
import { tablesAt } from './orderDatabases.js';
import { statusCancelled, type CancellationColumns, type OrderRowColumns, type ProjectionBatch } from './projectionRows.js';

const rowColumns = `order_id, user_id, seller_id, item_id, slice_id, buy_quantity, status, create_time, modify_time, table_index`;

function rowParameters(rows: OrderRowColumns): string[] {
  return [
    integers(rows.orderIds),
    integers(rows.userIds),
    integers(rows.sellerIds),
    integers(rows.itemIds),
    integers(rows.sliceIds),
    integers(rows.quantities),
    integers(rows.statuses),
    integers(rows.createTimes),
    integers(rows.modifyTimes),
    integers(rows.tableIndexes),
  ];
}

function cancellationParameters(columns: CancellationColumns): string[] {
  return [integers(columns.orderIds), integers(columns.modifyTimes), integers(columns.tableIndexes)];
}

function distinct(values: readonly number[]): number[] {
  return [...new Set(values)].sort((left, right) => left - right);
}

/** The main statement of a batch; its one row says how many buyer and seller rows it inserted. */
export function projectionStatement(batch: ProjectionBatch): pg.QueryConfig {
  const parts: string[] = [
    `buyer AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                                    $7::int[], $8::bigint[], $9::bigint[], $10::int[]) AS row(${rowColumns}))`,
    `seller AS (SELECT * FROM unnest($11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
                                     $17::int[], $18::bigint[], $19::bigint[], $20::int[]) AS row(${rowColumns}))`,
    `buyer_cancellation AS (SELECT * FROM unnest($21::bigint[], $22::bigint[], $23::int[]) AS row(order_id, modify_time, table_index))`,
    `seller_cancellation AS (SELECT * FROM unnest($24::bigint[], $25::bigint[], $26::int[]) AS row(order_id, modify_time, table_index))`,
  ];
  const buyerInserts: string[] = [];
  const sellerInserts: string[] = [];
  for (const tableIndex of distinct(batch.buyerRows.tableIndexes)) {
    const { recent, history } = tablesAt('buyer', tableIndex);
    buyerInserts.push(`buyer_${tableIndex}`);
    parts.push(`buyer_${tableIndex} AS (
  INSERT INTO ${recent} (id, user_id, order_id, create_time, item_id, status, modify_time, buy_quantity, seller_id, slice_id)
  SELECT order_id, user_id, order_id, create_time, item_id, status, modify_time, buy_quantity, seller_id, slice_id
    FROM buyer WHERE table_index = ${tableIndex}
     AND NOT EXISTS (SELECT 1 FROM ${history} AS moved WHERE moved.id = buyer.order_id)
  ON CONFLICT (id) DO NOTHING RETURNING 1)`);
  }
  for (const tableIndex of distinct(batch.sellerRows.tableIndexes)) {
    const { recent, history } = tablesAt('seller', tableIndex);
    sellerInserts.push(`seller_${tableIndex}`);
    parts.push(`seller_${tableIndex} AS (
  INSERT INTO ${recent} (id, seller_id, order_id, create_time, item_id, user_id, status, modify_time, buy_quantity, slice_id)
  SELECT order_id, seller_id, order_id, create_time, item_id, user_id, status, modify_time, buy_quantity, slice_id
    FROM seller WHERE table_index = ${tableIndex}
     AND NOT EXISTS (SELECT 1 FROM ${history} AS moved WHERE moved.id = seller.order_id)
  ON CONFLICT (id) DO NOTHING RETURNING 1)`);
  }
  const cancelled: string[] = [];
  for (const [dimension, columns] of [
    ['buyer', batch.buyerCancellations],
    ['seller', batch.sellerCancellations],
  ] as const) {
    for (const tableIndex of distinct(columns.tableIndexes)) {
      const name = `${dimension}_cancelled_${tableIndex}`;
      cancelled.push(name);
      parts.push(`${name} AS (
  UPDATE ${tablesAt(dimension, tableIndex).recent} AS stored SET status = ${statusCancelled}, modify_time = cancellation.modify_time
    FROM ${dimension}_cancellation AS cancellation
   WHERE cancellation.table_index = ${tableIndex} AND stored.id = cancellation.order_id
  RETURNING 1)`);
    }
  }
  parts.push(`positions AS (
  UPDATE projection_position AS stored SET sequence = moved.sequence
    FROM unnest($27::bigint[], $28::bigint[], $29::bigint[]) AS moved(slice_id, previous, sequence)
   WHERE stored.slice_id = moved.slice_id AND stored.sequence = moved.previous
  RETURNING 1)`);
  const total = (names: readonly string[]) =>
    names.length === 0 ? '0' : names.map((name) => `(SELECT count(*) FROM ${name})`).join(' + ');
  const text = `WITH ${parts.join(',\n')}
SELECT assert_true((SELECT count(*) FROM positions) = cardinality($27::bigint[]),
                   'another projector moved a position of this batch') AS positioned,
       ${total(buyerInserts)} AS buyer_rows, ${total(sellerInserts)} AS seller_rows, ${total(cancelled)} AS cancelled_rows`;
  return {
    text,
    values: [
      ...rowParameters(batch.buyerRows),
      ...rowParameters(batch.sellerRows),
      ...cancellationParameters(batch.buyerCancellations),
      ...cancellationParameters(batch.sellerCancellations),
      integers(batch.positions.sliceIds),
      integers(batch.positions.previous),
      integers(batch.positions.sequences),
    ],
  };
}

/** The second statement: cancellations of orders already in history. `null` when the batch cancels nothing. */
export function historyCancellationStatement(batch: ProjectionBatch): pg.QueryConfig | null {
  const parts: string[] = [
    `buyer_cancellation AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS row(order_id, modify_time, table_index))`,
    `seller_cancellation AS (SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::int[]) AS row(order_id, modify_time, table_index))`,
  ];
  const cancelled: string[] = [];
  for (const [dimension, columns] of [
    ['buyer', batch.buyerCancellations],
    ['seller', batch.sellerCancellations],
  ] as const) {
    for (const tableIndex of distinct(columns.tableIndexes)) {
      const name = `${dimension}_cancelled_${tableIndex}`;
      cancelled.push(name);
      parts.push(`${name} AS (
  UPDATE ${tablesAt(dimension, tableIndex).history} AS stored SET status = ${statusCancelled}, modify_time = cancellation.modify_time
    FROM ${dimension}_cancellation AS cancellation
   WHERE cancellation.table_index = ${tableIndex} AND stored.id = cancellation.order_id
  RETURNING 1)`);
    }
  }
  if (cancelled.length === 0) return null;
  return {
    text: `WITH ${parts.join(',\n')}\nSELECT ${cancelled.map((name) => `(SELECT count(*) FROM ${name})`).join(' + ')} AS cancelled_rows`,
    values: [...cancellationParameters(batch.buyerCancellations), ...cancellationParameters(batch.sellerCancellations)],
  };
}
