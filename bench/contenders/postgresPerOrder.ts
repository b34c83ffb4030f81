/**
 * Contender: what a shop writes first. One transaction per order, from N concurrent clients: a
 * guarded UPDATE of the item's stock row, and an INSERT of the order when the UPDATE took a
 * unit; COMMIT. The row lock and one WAL flush per commit serialise every buyer. The client
 * count is this process's argument after the settings.
 *
 * Order ids are made here, so that every acknowledged id can be looked for in the table later.
 */
import pg from 'pg';
import { contenderMain, postgresConditions, withDatabase } from '../harness/child.js';
import { CpuMeter, type CpuSubject } from '../harness/cpu.js';
import { closedLoop, openLoop, sellOut, type Attempt, type PlaceOrder } from '../harness/loops.js';
import { countMissing, cpuFigures, halfOf, latencyFigures, loadNotes, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';

const items = { closedLoop: 1, openLoop: 2, sellOut: 3 } as const;
const unlimitedStock = 1_000_000_000;

async function run(settings: BenchSettings): Promise<ContenderResult> {
  const clients = Number(process.argv[3]);
  if (!Number.isSafeInteger(clients) || clients < 1) throw new Error(`the client count must be a positive integer, got ${process.argv[3]}`);
  return withDatabase(`bench_postgres_${clients}`, async (database) => {
    const pool = new pg.Pool({ connectionString: database.url, max: clients });
    // pool.end() resolves before every connection has closed, so the server's shutdown that
    // follows can still end an idle one; that is no failure of the run, and must not crash it.
    // A connection that breaks during the run fails its query, which the loops count.
    pool.on('error', () => undefined);
    try {
      await pool.query(`
        CREATE TABLE item (id bigint PRIMARY KEY, quantity bigint NOT NULL CHECK (quantity >= 0), stock bigint NOT NULL);
        CREATE TABLE item_order (id bigint PRIMARY KEY, item_id bigint NOT NULL, user_id bigint NOT NULL,
                                 quantity bigint NOT NULL, create_time bigint NOT NULL);
        INSERT INTO item VALUES (${items.closedLoop}, ${unlimitedStock}, ${unlimitedStock}),
                                (${items.openLoop}, ${unlimitedStock}, ${unlimitedStock}),
                                (${items.sellOut}, ${settings.sellOutStock}, ${settings.sellOutStock});`);
      let nextOrder = 1;
      const buyer = (itemId: number): PlaceOrder => async (): Promise<Attempt> => {
        const orderId = nextOrder++;
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const updated = await client.query('UPDATE item SET quantity = quantity - 1 WHERE id = $1 AND quantity >= 1', [itemId]);
          if (updated.rowCount === 1) {
            await client.query('INSERT INTO item_order (id, item_id, user_id, quantity, create_time) VALUES ($1, $2, $3, 1, $4)', [
              orderId,
              itemId,
              orderId,
              Date.now(),
            ]);
          }
          await client.query('COMMIT');
          return updated.rowCount === 1 ? { kind: 'order', orderId: String(orderId) } : { kind: 'refused', reason: 'sold_out' };
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      };

      const subjects: CpuSubject[] = [{ label: 'node', pid: 'self' }];
      if (database.postmasterPid !== null) subjects.push({ label: 'postgres', pid: database.postmasterPid });
      const maximum = await closedLoop({
        placeOrder: buyer(items.closedLoop),
        concurrency: clients,
        warmupSeconds: settings.warmupSeconds,
        seconds: settings.seconds,
        meter: new CpuMeter(subjects),
      });
      const ordersPerSecond = maximum.ordersInWindow / maximum.windowSeconds;
      const latency = await openLoop({ placeOrder: buyer(items.openLoop), ratePerSecond: halfOf(ordersPerSecond), seconds: settings.latencySeconds });
      const soldOut = await sellOut(buyer(items.sellOut), clients);

      // What is stored: the order rows by item, and the sell-out item's row.
      const rows = await pool.query<{ id: string; item_id: string }>('SELECT id, item_id FROM item_order');
      const stored = new Map<string, Set<string>>();
      for (const row of rows.rows) {
        const ids = stored.get(row.item_id) ?? new Set<string>();
        ids.add(row.id);
        stored.set(row.item_id, ids);
      }
      const lost =
        countMissing(maximum.acknowledged, stored.get(String(items.closedLoop)) ?? new Set()) +
        countMissing(latency.acknowledged, stored.get(String(items.openLoop)) ?? new Set()) +
        countMissing(soldOut.acknowledged, stored.get(String(items.sellOut)) ?? new Set());
      const sellOutSold = stored.get(String(items.sellOut))?.size ?? 0;
      return {
        name: `postgres-${clients}`,
        title: `PostgreSQL, one transaction per order, ${clients} clients`,
        ordersPerSecond,
        windowSeconds: maximum.windowSeconds,
        cpu: cpuFigures(maximum.cpu!, maximum.ordersInWindow, 'node', database.postmasterPid === null ? null : 'postgres'),
        latency: latencyFigures(latency),
        batch: { boundEvents: 1, meanEvents: 1, p50Events: 1, maxEvents: 1 },
        check: {
          method: 'the order rows in the table, by id, and the sell-out item\'s rows',
          acknowledged: maximum.acknowledged.length + latency.acknowledged.length + soldOut.acknowledged.length,
          stored: rows.rowCount ?? 0,
          lostAcknowledgements: lost,
          oversold: Math.max(0, sellOutSold - settings.sellOutStock),
          sellOutStock: settings.sellOutStock,
          sellOutSold,
        },
        conditions: {
          clients,
          batchBoundEvents: 1,
          processCpu: 'the node-postgres clients that run the transactions',
          statements: 'BEGIN; UPDATE … WHERE quantity >= 1; INSERT; COMMIT',
          ...postgresConditions(database),
        },
        notes: loadNotes({ maximum, latency, sellOut: soldOut }),
      };
    } finally {
      await pool.end();
    }
  });
}

contenderMain(run);
