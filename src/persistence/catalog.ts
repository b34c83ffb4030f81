/**
 * Where items, slices, the blocklist and the engine's secrets are stored, across the inventory
 * databases.
 *
 * Database 0 is the primary: it holds the catalog (every item's definition and the placement
 * of its slices), the blocklist and the secrets, and it is also an inventory database. Each
 * inventory database holds the slices placed on it (their `item_inventory` rows, journal,
 * snapshots), like the seed service's `inventory` and `inventory2`. Orders live in the order
 * databases (src/orders/), projected from the journals.
 *
 * An item spread over several databases is written without a transaction across them: first
 * its slices on the other databases, then, last, its catalog row on the primary, which lists
 * where each slice lives. That last commit is the moment the item exists. If it never comes
 * (the primary failed, or the process died in between), the rows written before it are
 * orphans: they belong to no item, and the next create of the same id removes them before it
 * writes, so a failed create never blocks its id. A primary commit whose answer was lost is
 * settled by reading the catalog back, so the caller hears whether the item exists.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { decide, initialState } from '../domain/slice.js';
import type { ItemDefinition, SaleTerms } from '../items.js';
import { itemDefinition, splitEvenly } from '../items.js';
import { writeBatch } from './flushStatement.js';
import { buildFlushParameters } from './flushParameters.js';
import { OutcomeUnknownError } from '../errors.js';
import { inTransaction } from './pools.js';

/** A slice of an item and the inventory database it lives on. */
export interface SlicePlacement {
  readonly sliceId: string;
  readonly databaseIndex: number;
}

export interface StoredItem {
  readonly definition: ItemDefinition;
  /** In slice order. */
  readonly slices: readonly SlicePlacement[];
}

/** How long a create whose commit answer was lost keeps asking whether the item exists. */
const readBackWaitMs = 10_000;

export class Catalog {
  /**
   * Creates run one at a time: a create removes the orphans of its id on the other databases,
   * which must never be the rows of a concurrent create of the same id that is about to commit.
   */
  private creating: Promise<unknown> = Promise.resolve();

  /** `pools[0]` is the primary. */
  constructor(private readonly pools: readonly pg.Pool[]) {
    if (pools.length === 0) throw new Error('the catalog needs at least one database');
  }

  private get primary(): pg.Pool {
    return this.pools[0]!;
  }

  get databaseCount(): number {
    return this.pools.length;
  }

  /**
   * Writes a new item: the slice rows and each slice's first journal event on every database
   * that holds slices of it, then the catalog row. Throws an error with code 23505 when the id
   * is taken.
   */
  insertItem(definition: ItemDefinition, nowMs: number): Promise<SlicePlacement[]> {
    const created = this.creating.then(() => this.insertItemAlone(definition, nowMs));
    this.creating = created.catch(() => undefined);
    return created;
  }

  private async insertItemAlone(definition: ItemDefinition, nowMs: number): Promise<SlicePlacement[]> {
    const taken = await this.primary.query('SELECT 1 FROM sale_item WHERE id = $1', [definition.id]);
    if (taken.rowCount !== 0) throw Object.assign(new Error(`item ${definition.id} exists`), { code: '23505' });

    // Ids for the header row and every slice come from the primary's sequence, so a slice id
    // names one slice across all the databases.
    const ids = await this.primary.query<{ id: string }>(
      `SELECT nextval(pg_get_serial_sequence('seckill.item_inventory', 'id'))::text AS id FROM generate_series(0, $1)`,
      [definition.slices],
    );
    const [headerId, ...sliceIds] = ids.rows.map((row) => row.id) as [string, ...string[]];
    const placements = sliceIds.map((sliceId, sliceIndex) => ({ sliceId, databaseIndex: sliceIndex % this.pools.length }));
    const shares = splitEvenly(definition.stock, definition.slices);

    const onDatabase = (databaseIndex: number) =>
      placements.flatMap((placement, sliceIndex) =>
        placement.databaseIndex === databaseIndex ? [{ ...placement, sliceIndex, stock: shares[sliceIndex]! }] : [],
      );
    // The primary has no catalog row for this id, so whatever the other databases hold for it
    // is left by a create that never committed.
    await this.removeOrphans(definition.id);
    for (let databaseIndex = 1; databaseIndex < this.pools.length; databaseIndex++) {
      const slices = onDatabase(databaseIndex);
      if (slices.length === 0) continue;
      await inTransaction(this.pools[databaseIndex]!, (client) => writeSlices(client, definition, headerId, slices, nowMs, false));
    }
    try {
      await inTransaction(this.primary, (client) => writeSlices(client, definition, headerId, onDatabase(0), nowMs, true, placements));
    } catch (error) {
      // The commit's answer may be lost although it committed: the catalog row says. A row
      // that cannot be read within `readBackWaitMs` leaves the outcome unknown, never "not created".
      if (!(error instanceof pg.DatabaseError) && (await this.catalogHoldsReadBack(definition.id, placements))) return placements;
      await this.removeOrphans(definition.id).catch(() => undefined);
      throw error;
    }
    return placements;
  }

  /** `catalogHolds`, asked again while the primary does not answer; throws `OutcomeUnknownError` if it never does. */
  private async catalogHoldsReadBack(itemId: string, placements: readonly SlicePlacement[]): Promise<boolean> {
    const deadline = Date.now() + readBackWaitMs;
    for (let delayMs = 50; ; delayMs = Math.min(delayMs * 2, 1_000)) {
      try {
        return await this.catalogHolds(itemId, placements);
      } catch (error) {
        if (Date.now() + delayMs > deadline) throw new OutcomeUnknownError(`whether item ${itemId} was created is not known`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** True when the primary's catalog row for `itemId` lists exactly these slices. */
  private async catalogHolds(itemId: string, placements: readonly SlicePlacement[]): Promise<boolean> {
    const { rows } = await this.primary.query<{ slice_ids: string[] | null }>('SELECT slice_ids::text[] FROM sale_item WHERE id = $1', [
      itemId,
    ]);
    const stored = rows[0]?.slice_ids;
    return stored !== undefined && stored !== null && stored.join(',') === placements.map((placement) => placement.sliceId).join(',');
  }

  /** Removes, from every database but the primary, the rows a create of `itemId` left without its catalog row. */
  private async removeOrphans(itemId: string): Promise<void> {
    for (const pool of this.pools.slice(1)) {
      await inTransaction(pool, async (client) => {
        const slices = `SELECT id FROM item_inventory WHERE item_id = $1`;
        await client.query(`DELETE FROM journal_batch WHERE slice_id IN (${slices})`, [itemId]);
        await client.query(`DELETE FROM journal_event WHERE slice_id IN (${slices})`, [itemId]);
        await client.query(`DELETE FROM journal_snapshot WHERE slice_id IN (${slices})`, [itemId]);
        await client.query('DELETE FROM item_inventory WHERE item_id = $1 AND parent_id IS NOT NULL', [itemId]);
        await client.query('DELETE FROM item_inventory WHERE item_id = $1', [itemId]);
        await client.query('DELETE FROM sale_item WHERE id = $1', [itemId]);
      });
    }
  }

  /**
   * Writes an item's new window and limit to its catalog row. The copies on the other inventory
   * databases (kept for their foreign keys) go first and the primary's row, which the engine
   * loads at start, last: the primary's write is the change's commit point.
   */
  async amendItem(itemId: string, terms: SaleTerms): Promise<void> {
    for (const pool of [...this.pools.slice(1), this.primary]) {
      await pool.query('UPDATE sale_item SET per_user_limit = $2, starts_at = $3, ends_at = $4 WHERE id = $1', [
        itemId,
        terms.perUserLimit,
        terms.startsAt,
        terms.endsAt,
      ]);
    }
  }

  async loadItems(): Promise<StoredItem[]> {
    const result = await this.primary.query<{
      id: string;
      name: string;
      seller_id: string;
      stock: string;
      per_user_limit: number;
      starts_at: string;
      ends_at: string | null;
      reserve_ttl_ms: number;
      slices: number;
      challenge: 'none' | 'arithmetic';
      eligibility: ItemDefinition['eligibility'];
      slice_ids: string[];
      slice_databases: number[];
    }>('SELECT * FROM sale_item WHERE slice_ids IS NOT NULL ORDER BY create_time');
    return result.rows.map((row) => {
      const missing = row.slice_databases.find((databaseIndex) => databaseIndex >= this.pools.length);
      if (missing !== undefined) {
        throw new Error(`item ${row.id} has a slice on inventory database ${missing}, but only ${this.pools.length} are configured`);
      }
      return {
        definition: itemDefinition({
          id: row.id,
          name: row.name,
          sellerId: row.seller_id,
          stock: Number(row.stock),
          perUserLimit: row.per_user_limit,
          startsAt: Number(row.starts_at),
          endsAt: row.ends_at === null ? null : Number(row.ends_at),
          reserveTtlMs: row.reserve_ttl_ms,
          slices: row.slices,
          challenge: row.challenge,
          eligibility: row.eligibility,
        }),
        slices: row.slice_ids.map((sliceId, index) => ({ sliceId, databaseIndex: row.slice_databases[index]! })),
      };
    });
  }

  async block(userId: string, nowMs: number): Promise<void> {
    await this.primary.query(
      'INSERT INTO blocklist (user_id, created_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING',
      [userId, nowMs],
    );
  }

  async unblock(userId: string): Promise<void> {
    await this.primary.query('DELETE FROM blocklist WHERE user_id = $1', [userId]);
  }

  async blocklist(): Promise<string[]> {
    const result = await this.primary.query<{ user_id: string }>('SELECT user_id FROM blocklist');
    return result.rows.map((row) => row.user_id);
  }

  /** The key reservation tokens are signed with: made once, kept, so tokens survive restarts. */
  async tokenSecret(): Promise<Buffer> {
    await this.primary.query(
      `INSERT INTO engine_secret (name, value) VALUES ('reservation_token', $1) ON CONFLICT (name) DO NOTHING`,
      [randomBytes(32)],
    );
    const result = await this.primary.query<{ value: Buffer }>(`SELECT value FROM engine_secret WHERE name = 'reservation_token'`);
    return result.rows[0]!.value;
  }

  async reachable(): Promise<boolean> {
    try {
      await Promise.all(this.pools.map((pool) => pool.query('SELECT 1')));
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * On one database, in the caller's transaction: the item's definition (the catalog row on the
 * primary, a copy elsewhere for the foreign keys), its header row, the given slices and each
 * slice's first journal event.
 */
async function writeSlices(
  client: pg.PoolClient,
  definition: ItemDefinition,
  headerId: string,
  slices: readonly { sliceId: string; sliceIndex: number; stock: number }[],
  nowMs: number,
  primary: boolean,
  placements?: readonly SlicePlacement[],
): Promise<void> {
  await client.query(
    `INSERT INTO sale_item (id, name, seller_id, stock, per_user_limit, starts_at, ends_at, reserve_ttl_ms, slices,
                            challenge, eligibility, create_time, slice_ids, slice_databases)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ${primary ? '' : 'ON CONFLICT (id) DO NOTHING'}`,
    [
      definition.id, definition.name, definition.sellerId, definition.stock, definition.perUserLimit,
      definition.startsAt, definition.endsAt, definition.reserveTtlMs, definition.slices, definition.challenge,
      definition.eligibility === null ? null : JSON.stringify(definition.eligibility), nowMs,
      placements?.map((placement) => placement.sliceId) ?? null,
      placements?.map((placement) => placement.databaseIndex) ?? null,
    ],
  );
  await client.query(
    `INSERT INTO item_inventory (id, item_id, create_time, modify_time, parent_id, root_id)
     VALUES ($1, $2, $3, $3, NULL, $1) ON CONFLICT (id) DO NOTHING`,
    [headerId, definition.id, nowMs],
  );
  if (slices.length === 0) return;
  await client.query(
    `INSERT INTO item_inventory (id, item_id, create_time, modify_time, parent_id, root_id, slice_index)
     SELECT id, $1, $2, $2, $3, $3, slice_index FROM unnest($4::bigint[], $5::int[]) AS slice(id, slice_index)`,
    [definition.id, nowMs, headerId, slices.map((slice) => slice.sliceId), slices.map((slice) => slice.sliceIndex)],
  );
  const events = slices.map(({ sliceId, sliceIndex, stock }) => {
    const decision = decide(
      {
        kind: 'define',
        nowMs,
        itemId: definition.id,
        sliceIndex,
        stock,
        perUserLimit: definition.perUserLimit,
        startsAt: definition.startsAt,
        endsAt: definition.endsAt,
        reserveTtlMs: definition.reserveTtlMs,
      },
      initialState(),
    );
    const event = decision.events[0];
    if (decision.rejection !== null || event === undefined) throw new Error(`slice definition refused: ${decision.rejection}`);
    return { sliceId, sequence: 1, event };
  });
  await writeBatch(client, buildFlushParameters(events, [], () => 0), nowMs);
}
