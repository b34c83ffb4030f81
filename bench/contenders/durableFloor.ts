/**
 * Contender: the physical floor of a durable order on this machine (after shared/durable-floor.mjs).
 * PostgreSQL with fsync on commits batches of N events, each batch as ONE journal row (30 bytes
 * of incompressible payload per event) with the stock row updated in the same statement,
 * batches sent back to back on one connection. It decides nothing and acknowledges nobody: it
 * measures what getting orders to disk costs at best, to set the engine's cost beside it.
 */
import pg from 'pg';
import { contenderMain, postgresConditions, withDatabase } from '../harness/child.js';
import { CpuMeter, type CpuSubject } from '../harness/cpu.js';
import { cpuFigures, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';

/** Bytes per event in a batch row: about what an order's sequence, ids, quantity and time take packed. */
const bytesPerEvent = 30;
const initialStock = 1e15;

async function run(settings: BenchSettings): Promise<ContenderResult> {
  const eventsPerBatch = settings.floorEventsPerBatch;
  return withDatabase('bench_floor', async (database) => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`
        CREATE TABLE journal (slice_id bigint, seq_from bigint, seq_to bigint, payload bytea, PRIMARY KEY (slice_id, seq_from));
        CREATE TABLE stock (id bigint PRIMARY KEY, available bigint CHECK (available >= 0));
        INSERT INTO stock VALUES (1, ${initialStock});`);
      const payload = Buffer.alloc(eventsPerBatch * bytesPerEvent);
      for (let index = 0; index < payload.length; index++) payload[index] = (Math.random() * 256) | 0;
      let sequence = 1;
      const writeBatch = async (): Promise<void> => {
        // Fresh sequence numbers and buyer ids in every event, so no two rows compress alike.
        for (let event = 0; event < eventsPerBatch; event++) {
          payload.writeUInt32LE((sequence + event) >>> 0, event * bytesPerEvent);
          payload.writeUInt32LE((Math.random() * 4e9) >>> 0, event * bytesPerEvent + 4);
        }
        await client.query({
          name: 'floor',
          text: `WITH batch AS (INSERT INTO journal VALUES (1, $1, $2, $3) RETURNING 1)
                 UPDATE stock SET available = available - $4 WHERE id = 1 AND (SELECT count(*) FROM batch) = 1`,
          values: [sequence, sequence + eventsPerBatch - 1, payload, eventsPerBatch],
        });
        sequence += eventsPerBatch;
      };
      const until = async (seconds: number): Promise<number> => {
        const end = performance.now() + seconds * 1000;
        let batches = 0;
        while (performance.now() < end) {
          await writeBatch();
          batches++;
        }
        return batches;
      };
      await until(settings.warmupSeconds);
      const subjects: CpuSubject[] = [{ label: 'node', pid: 'self' }];
      if (database.postmasterPid !== null) subjects.push({ label: 'postgres', pid: database.postmasterPid });
      const meter = new CpuMeter(subjects);
      meter.begin();
      const batches = await until(settings.seconds);
      const window = meter.end();
      const orders = batches * eventsPerBatch;
      const committed = sequence - 1;

      const stored = await client.query<{ events: string; available: string }>(
        'SELECT (SELECT coalesce(sum(seq_to - seq_from + 1), 0) FROM journal) AS events, (SELECT available FROM stock WHERE id = 1) AS available',
      );
      const storedEvents = Number(stored.rows[0]!.events);
      const taken = initialStock - Number(stored.rows[0]!.available);
      return {
        name: 'floor',
        title: 'Durable floor (one row per batch)',
        ordersPerSecond: orders / window.seconds,
        windowSeconds: window.seconds,
        cpu: cpuFigures(window, orders, 'node', database.postmasterPid === null ? null : 'postgres'),
        latency: { notApplicable: 'it acknowledges nobody: batches are written back to back' },
        batch: { boundEvents: eventsPerBatch, meanEvents: eventsPerBatch, p50Events: eventsPerBatch, maxEvents: eventsPerBatch },
        check: {
          method: 'the events the journal rows cover, and the stock row, against the events committed; no sell-out, as it decides nothing',
          acknowledged: committed,
          stored: storedEvents,
          lostAcknowledgements: Math.max(0, committed - storedEvents) + Math.abs(taken - storedEvents),
          oversold: 0,
          sellOutStock: 0,
          sellOutSold: 0,
        },
        conditions: {
          clients: 1,
          batchBoundEvents: eventsPerBatch,
          processCpu: 'filling each batch row and sending it',
          bytesPerEvent,
          statement: 'INSERT one journal row + UPDATE the stock row, one statement per batch',
          ...postgresConditions(database),
        },
        notes: [],
      };
    } finally {
      await client.end();
    }
  });
}

contenderMain(run);
