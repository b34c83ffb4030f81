/**
 * Storing a new item in the catalog, and what a failure to store it means: an item that exists
 * already is a conflict; a write whose outcome is lost is neither created nor not created, and
 * the answer says how to find out; storage that is down created nothing.
 */
import { OutcomeUnknownError } from '../errors.js';
import type { ItemDefinition } from '../items.js';
import type { Catalog, SlicePlacement } from '../persistence/catalog.js';
import type { AdminFailure, EngineLog } from './types.js';

/** PostgreSQL's unique_violation: the item's id is taken. */
const uniqueViolation = '23505';

export async function storeNewItem(
  catalog: Catalog,
  definition: ItemDefinition,
  nowMs: number,
  log: EngineLog,
): Promise<{ readonly ok: true; readonly placements: SlicePlacement[] } | AdminFailure> {
  try {
    return { ok: true, placements: await catalog.insertItem(definition, nowMs) };
  } catch (error) {
    if ((error as { code?: string }).code === uniqueViolation) {
      return { ok: false, error: 'conflict', message: `item ${definition.id} exists` };
    }
    log('error', `creating item ${definition.id} failed`, error);
    if (error instanceof OutcomeUnknownError) {
      return { ok: false, error: 'unknown', message: `whether item ${definition.id} was created is not known; GET /items/${definition.id} after a restart tells` };
    }
    return { ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was created' };
  }
}
