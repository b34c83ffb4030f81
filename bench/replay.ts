/**
 * How long `seckill replay` takes to fold and verify a journal of 1,000,000 events.
 *
 *   npm run bench:replay
 *   BENCH_REPLAY_EVENTS=1000000 BENCH_REPLAY_SLICES=4 npm run bench:replay
 *
 * Builds the journal fast, without the engine: one item of BENCH_REPLAY_SLICES slices created
 * through the catalog, then `purchased` events by distinct buyers appended to each slice in
 * batches of 10,000 through the engine's own flush statement (so the stock rows move with
 * them). Then times the fold with every per-event and per-item check (what `seckill replay
 * --verify` does before it compares the projections), and the export of the same journal.
 * The last line is one JSON object for machines.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseItemDefinition } from '../src/items.js';
import { Catalog } from '../src/persistence/catalog.js';
import { buildFlushParameters } from '../src/persistence/flushParameters.js';
import { writeBatch } from '../src/persistence/flushStatement.js';
import type { JournalEvent } from '../src/persistence/journalRows.js';
import { migrate } from '../src/persistence/migrations.js';
import { createPool, inTransaction } from '../src/persistence/pools.js';
import { databaseSource } from '../src/replay/sources.js';
import { exportJournals } from '../src/replay/transfer.js';
import { foldSource } from '../src/replay/verify.js';
import { withDatabase } from './harness/child.js';
import { readPositiveInteger } from './support/measure.js';

const events = readPositiveInteger('BENCH_REPLAY_EVENTS', 1_000_000);
const slices = readPositiveInteger('BENCH_REPLAY_SLICES', 4);
const batchEvents = 10_000;

async function main(): Promise<void> {
  await withDatabase('bench_replay', async (database) => {
    const pool = createPool({ connectionString: database.url, connectionsMax: 2, statementTimeoutMs: 0 });
    try {
      await migrate(pool);
      const catalog = new Catalog([pool]);
      const nowMs = Date.now();
      const parsed = parseItemDefinition({ id: '1', name: 'Replayed item', sellerId: '1', stock: events + slices, slices }, nowMs, 1);
      if (!parsed.ok) throw new Error(parsed.message);
      const placements = await catalog.insertItem(parsed.definition, nowMs);

      const buildStarted = performance.now();
      const perSlice = Math.ceil(events / slices);
      let user = 1_000_000;
      let order = 1_000_000_000_000;
      for (const { sliceId } of placements) {
        for (let first = 0; first < perSlice; first += batchEvents) {
          const batch: JournalEvent[] = [];
          for (let index = first; index < Math.min(first + batchEvents, perSlice); index++) {
            batch.push({ sliceId, sequence: index + 2, event: { kind: 'purchased', orderId: String(order++), userId: String(user++), quantity: 1, atMs: nowMs + index } });
          }
          await inTransaction(pool, (client) => writeBatch(client, buildFlushParameters(batch, [], () => 0), nowMs));
        }
      }
      const buildSeconds = (performance.now() - buildStarted) / 1_000;

      const source = databaseSource([pool], 'the bench database');
      const total = await source.eventCount();
      const foldStarted = performance.now();
      const outcome = await foldSource(source, null, () => undefined);
      const foldSeconds = (performance.now() - foldStarted) / 1_000;
      if (outcome.violations.length > 0) throw new Error(`the journal did not verify: ${JSON.stringify(outcome.violations[0])}`);

      const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-bench-replay-'));
      try {
        const file = path.join(directory, 'journal.ndjson');
        const exportStarted = performance.now();
        await exportJournals(source, file, () => undefined);
        const exportSeconds = (performance.now() - exportStarted) / 1_000;
        const bytes = (await stat(file)).size;

        console.log('bench:replay: folding and verifying a journal, and exporting it');
        console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length} cores, node ${process.version}; load ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}`);
        console.log(`journal: ${total} events over ${slices} slices of one item, written in ${buildSeconds.toFixed(1)} s (batches of ${batchEvents})`);
        console.log(`fold + verify (every per-event and per-item invariant): ${foldSeconds.toFixed(2)} s, ${Math.round(total / foldSeconds)} events/s`);
        console.log(`export to NDJSON: ${exportSeconds.toFixed(2)} s, ${(bytes / 1e6).toFixed(0)} MB`);
        console.log(JSON.stringify({ events: total, slices, foldVerifySeconds: Number(foldSeconds.toFixed(2)), exportSeconds: Number(exportSeconds.toFixed(2)), exportBytes: bytes }));
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    } finally {
      await pool.end();
    }
  });
}

await main();
process.exit(0);
