/**
 * Where `seckill replay` reads journals from: the configured databases (the same settings as
 * the server), or an export file of NDJSON lines. Both give the items first, then each slice's
 * events in sequence order, a page at a time, so a long journal never sits in memory whole.
 *
 * The export format, one JSON object per line:
 *   {"type":"item","item":{…the item's definition…},"slices":[{"sliceId":"…","databaseIndex":0},…]}
 *   {"type":"event","itemId":"…","sliceIndex":0,"sliceId":"…","sequence":1,"event":{"kind":"defined",…}}
 * Items come before events; a slice's events are in sequence order.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
import type { ItemDefinition } from '../items.js';
import { Catalog, type StoredItem } from '../persistence/catalog.js';
import { readEventPages } from '../persistence/journalReads.js';
import type { StoredEvent } from '../persistence/journalStore.js';
import type { SliceIdentity } from './fold.js';

/** Consecutive events of one slice, in sequence order. */
export interface SlicePage {
  readonly slice: SliceIdentity;
  readonly events: StoredEvent[];
}

const pageEventsMax = 10_000;

export interface JournalSource {
  readonly description: string;
  items(): Promise<StoredItem[]>;
  /** Every slice's events, slice after slice, a page at a time. */
  pages(): AsyncIterable<SlicePage>;
  /** How many events there are, for the progress bar (an estimate is fine). */
  eventCount(): Promise<number>;
}

export interface ExportItemLine {
  readonly type: 'item';
  readonly item: ItemDefinition;
  readonly slices: readonly { readonly sliceId: string; readonly databaseIndex: number }[];
}

export interface ExportEventLine {
  readonly type: 'event';
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly sliceId: string;
  readonly databaseIndex: number;
  readonly sequence: number;
  readonly event: SliceEvent;
}

/** The journals in the inventory databases (`pools[0]` is the primary, holding the catalog). */
export function databaseSource(pools: readonly pg.Pool[], description: string): JournalSource {
  const catalog = new Catalog(pools);
  let items: Promise<StoredItem[]> | undefined;
  const loadItems = (): Promise<StoredItem[]> => (items ??= catalog.loadItems());
  return {
    description,
    items: loadItems,
    async *pages() {
      for (const item of await loadItems()) {
        for (const [sliceIndex, { sliceId, databaseIndex }] of item.slices.entries()) {
          const slice = { itemId: item.definition.id, sliceIndex, sliceId, databaseIndex };
          for await (const events of readEventPages(pools[databaseIndex]!, sliceId, 0, pageEventsMax)) yield { slice, events };
        }
      }
    },
    async eventCount() {
      let count = 0;
      for (const pool of pools) {
        const { rows } = await pool.query<{ events: string }>(
          'SELECT (SELECT coalesce(sum(events), 0) FROM journal_batch) + (SELECT count(*) FROM journal_event) AS events',
        );
        count += Number(rows[0]!.events);
      }
      return count;
    },
  };
}

/** An export file written by `seckill replay export`. */
export function fileSource(path: string): JournalSource {
  const lines = async function* (): AsyncGenerator<{ number: number; value: ExportItemLine | ExportEventLine }> {
    const reader = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
    let number = 0;
    for await (const text of reader) {
      number++;
      if (text.trim() === '') continue;
      let value: ExportItemLine | ExportEventLine;
      try {
        value = JSON.parse(text) as ExportItemLine | ExportEventLine;
      } catch {
        throw new Error(`${path}:${number}: not a JSON line`);
      }
      if (value.type !== 'item' && value.type !== 'event') throw new Error(`${path}:${number}: a line of unknown type ${JSON.stringify((value as { type?: unknown }).type)}`);
      yield { number, value };
    }
  };
  return {
    description: `export file ${path}`,
    async items() {
      const items: StoredItem[] = [];
      for await (const { value } of lines()) {
        if (value.type === 'event') break;
        items.push({ definition: value.item, slices: value.slices });
      }
      return items;
    },
    async *pages() {
      let page: SlicePage | null = null;
      for await (const { number, value } of lines()) {
        if (value.type === 'item') continue;
        if (!Number.isSafeInteger(value.sequence)) throw new Error(`${path}:${number}: the event has no sequence`);
        if (page !== null && (page.slice.sliceId !== value.sliceId || page.events.length >= pageEventsMax)) {
          yield page;
          page = null;
        }
        page ??= { slice: { itemId: value.itemId, sliceIndex: value.sliceIndex, sliceId: value.sliceId, databaseIndex: value.databaseIndex }, events: [] };
        page.events.push({ sequence: value.sequence, event: value.event });
      }
      if (page !== null) yield page;
    },
    async eventCount() {
      let count = 0;
      for await (const { value } of lines()) if (value.type === 'event') count++;
      return count;
    },
  };
}
