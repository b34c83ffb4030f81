/**
 * Moving journals between installations as NDJSON (format in sources.ts): `export` writes every
 * item and every event of the configured databases to a file; `import` writes a file's items
 * and journals into databases that do not hold those items yet, through the same catalog and
 * flush statement as the engine, so the stock rows come out as the journal folds them.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type pg from 'pg';
import { Catalog } from '../persistence/catalog.js';
import { buildFlushParameters } from '../persistence/flushParameters.js';
import { writeBatch } from '../persistence/flushStatement.js';
import type { JournalEvent } from '../persistence/journalRows.js';
import { readEventAt } from '../persistence/journalReads.js';
import { sameEvent } from '../persistence/journalRows.js';
import { inTransaction } from '../persistence/pools.js';
import type { ExportEventLine, ExportItemLine, JournalSource } from './sources.js';

export async function exportJournals(source: JournalSource, path: string, onProgress: (events: number) => void): Promise<{ items: number; events: number }> {
  const output = createWriteStream(path, 'utf8');
  const write = async (line: ExportItemLine | ExportEventLine): Promise<void> => {
    if (!output.write(`${JSON.stringify(line)}\n`)) await once(output, 'drain');
  };
  const items = await source.items();
  for (const item of items) await write({ type: 'item', item: item.definition, slices: item.slices });
  let events = 0;
  for await (const { slice, events: page } of source.pages()) {
    for (const { sequence, event } of page) await write({ type: 'event', ...slice, sequence, event });
    events += page.length;
    onProgress(events);
  }
  output.end();
  await once(output, 'finish');
  return { items: items.length, events };
}

const importBatchEvents = 10_000;

/**
 * Creates each item of the file (its first event of each slice, `defined`, is the one the
 * catalog writes, with the exported time), then appends the rest of each slice's journal.
 * Refuses an item whose id the databases already hold.
 */
export async function importJournals(source: JournalSource, pools: readonly pg.Pool[], onProgress: (events: number) => void): Promise<{ items: number; events: number }> {
  const catalog = new Catalog(pools);
  const existing = new Set((await catalog.loadItems()).map((item) => item.definition.id));
  const items = await source.items();
  for (const item of items) {
    if (existing.has(item.definition.id)) throw new Error(`item ${item.definition.id} is already in the databases; import into databases that do not hold it`);
  }
  /** The slice ids the import created, by the exported slice id. */
  const placed = new Map<string, { sliceId: string; databaseIndex: number }>();
  const firstEvents = new Map<string, JournalEvent>();
  let events = 0;
  let batch: JournalEvent[] = [];
  let batchPool: pg.Pool | null = null;
  const flush = async (): Promise<void> => {
    if (batch.length === 0 || batchPool === null) return;
    const written = batch;
    batch = [];
    // Epoch 0: no engine has claimed these slices yet.
    await inTransaction(batchPool, (client) => writeBatch(client, buildFlushParameters(written, [], () => 0), Date.now()));
  };
  for await (const { slice, events: page } of source.pages()) {
    let target = placed.get(slice.sliceId);
    if (target === undefined) {
      const item = items.find((candidate) => candidate.definition.id === slice.itemId);
      if (item === undefined) throw new Error(`the file has events of item ${slice.itemId} but no item line for it`);
      const first = page[0];
      if (first === undefined || first.sequence !== 1 || first.event.kind !== 'defined') {
        throw new Error(`slice ${slice.sliceIndex} of item ${slice.itemId} does not start with its defined event at sequence 1`);
      }
      const placements = await catalog.insertItem(item.definition, first.event.atMs);
      for (const [index, placement] of placements.entries()) {
        const exported = item.slices[index];
        if (exported !== undefined) placed.set(exported.sliceId, placement);
      }
      target = placed.get(slice.sliceId);
      if (target === undefined) throw new Error(`item ${slice.itemId} has no slice ${slice.sliceIndex} after it was created`);
    }
    const pool = pools[target.databaseIndex]!;
    if (batchPool !== pool) {
      await flush();
      batchPool = pool;
    }
    for (const stored of page) {
      if (stored.sequence === 1) {
        // The catalog wrote this slice's defined event; it must say what the exported one says.
        firstEvents.set(target.sliceId, { sliceId: target.sliceId, sequence: 1, event: stored.event });
        continue;
      }
      batch.push({ sliceId: target.sliceId, sequence: stored.sequence, event: stored.event });
      if (batch.length >= importBatchEvents) await flush();
    }
    events += page.length;
    onProgress(events);
  }
  await flush();
  for (const [sliceId, exported] of firstEvents) {
    const pool = pools[[...placed.values()].find((placement) => placement.sliceId === sliceId)!.databaseIndex]!;
    const stored = await readEventAt(pool, sliceId, 1);
    if (stored === undefined || stored.kind !== 'defined' || exported.event.kind !== 'defined' || !sameEvent(stored, exported.event)) {
      throw new Error(`slice ${sliceId}: the imported item's first event differs from the exported one`);
    }
  }
  return { items: items.length, events };
}
