/**
 * The journal store on PostgreSQL: one statement per batch (flushStatement.ts) on one
 * connection kept for flushes, the owner epoch on each slice's inventory row, and the reads of
 * journalReads.ts.
 */
import type pg from 'pg';
import type { SliceEvent } from '../domain/slice.js';
import { flushQuery, isDefiniteRollback } from './flushStatement.js';
import { findEvent, readEventAt, readEvents, readSnapshot } from './journalReads.js';
import { buildFlushParameters } from './flushParameters.js';
import { sameEvent } from './journalRows.js';
import {
  WriteInDoubtError,
  type FindableColumn,
  type FindableKind,
  type FlushBatch,
  type JournalStore,
  type StoredEvent,
  type StoredSnapshot,
} from './journalStore.js';

export class PostgresJournalStore implements JournalStore {
  /** One connection for every flush, so a batch is sent the moment it is taken. */
  private flushClient: pg.PoolClient | null = null;

  constructor(private readonly pool: pg.Pool) {}

  async write(batch: FlushBatch): Promise<void> {
    const parameters = buildFlushParameters(batch.events, batch.snapshots, batch.epochOf);
    const client = this.flushClient ?? (await this.connectFlushClient());
    let sent = false;
    try {
      const written = client.query(flushQuery(parameters, batch.nowMs));
      sent = true;
      await written;
    } catch (error) {
      // After a failure the connection's state is unknown; it is not reused.
      this.dropFlushClient(client);
      // An error PostgreSQL answered means the statement rolled back. A connection lost while
      // the statement was out may have committed it.
      if (sent && !isDefiniteRollback(error)) {
        throw new WriteInDoubtError('the flush was sent and its outcome was lost', { cause: error });
      }
      throw error;
    }
  }

  async claim(sliceId: string): Promise<number> {
    const raised = await this.pool.query<{ owner_epoch: string }>(
      'UPDATE item_inventory SET owner_epoch = owner_epoch + 1 WHERE id = $1 AND parent_id IS NOT NULL RETURNING owner_epoch',
      [sliceId],
    );
    const row = raised.rows[0];
    if (row === undefined) throw new Error(`slice ${sliceId} has no inventory row`);
    return Number(row.owner_epoch);
  }

  readSnapshot(sliceId: string): Promise<StoredSnapshot | undefined> {
    return readSnapshot(this.pool, sliceId);
  }

  readEvents(sliceId: string, afterSequence: number): Promise<StoredEvent[]> {
    return readEvents(this.pool, sliceId, afterSequence);
  }

  async holdsEventAt(sliceId: string, sequence: number, event: SliceEvent): Promise<boolean> {
    const stored = await readEventAt(this.pool, sliceId, sequence);
    return stored !== undefined && sameEvent(stored, event);
  }

  findEvent(sliceId: string, afterVersion: number, kind: FindableKind, column: FindableColumn, id: string): Promise<SliceEvent | undefined> {
    return findEvent(this.pool, sliceId, afterVersion, kind, column, id);
  }

  async release(): Promise<void> {
    this.flushClient?.release();
    this.flushClient = null;
  }

  /**
   * The connection every flush uses. If it breaks while idle (the server restarted, say), it is
   * dropped at once, so the next flush connects anew and a refused connection is a plain failure
   * rather than a batch in doubt.
   */
  private async connectFlushClient(): Promise<pg.PoolClient> {
    const client = await this.pool.connect();
    client.on('error', () => this.dropFlushClient(client));
    this.flushClient = client;
    return client;
  }

  private dropFlushClient(client: pg.PoolClient): void {
    if (this.flushClient !== client) return;
    this.flushClient = null;
    client.release(true);
  }
}
