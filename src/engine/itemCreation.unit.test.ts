import { describe, expect, it } from 'vitest';
import { OutcomeUnknownError } from '../errors.js';
import { parseItemDefinition } from '../items.js';
import type { Catalog } from '../persistence/catalog.js';
import { storeNewItem } from './itemCreation.js';

const parsed = parseItemDefinition({ id: '42', name: 'Phone', sellerId: '7', stock: 10 }, 5_000, 1);
if (!parsed.ok) throw new Error(parsed.message);
const { definition } = parsed;

function catalogThat(insertItem: () => Promise<unknown>): Catalog {
  return { insertItem } as unknown as Catalog;
}

describe('storeNewItem', () => {
  it('gives the slices the catalog placed', async () => {
    const placements = [{ sliceId: '1001', databaseIndex: 0 }];
    expect(await storeNewItem(catalogThat(async () => placements), definition, 5_000, () => undefined)).toEqual({ ok: true, placements });
  });

  it('calls an id already taken in the catalog a conflict, and logs nothing', async () => {
    const logged: string[] = [];
    const taken = Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    const result = await storeNewItem(catalogThat(async () => Promise.reject(taken)), definition, 5_000, (_level, message) => logged.push(message));
    expect(result).toEqual({ ok: false, error: 'conflict', message: 'item 42 exists' });
    expect(logged).toEqual([]);
  });

  it('says a write whose outcome was lost is not known either way, and how to find out', async () => {
    const result = await storeNewItem(catalogThat(async () => Promise.reject(new OutcomeUnknownError('connection lost'))), definition, 5_000, () => undefined);
    expect(result).toMatchObject({ ok: false, error: 'unknown' });
    expect(result.ok ? '' : result.message).toContain('GET /items/42');
  });

  it('says storage that refused created nothing, and logs why', async () => {
    const logged: string[] = [];
    const result = await storeNewItem(catalogThat(async () => Promise.reject(new Error('connection refused'))), definition, 5_000, (_level, message) => logged.push(message));
    expect(result).toEqual({ ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was created' });
    expect(logged).toEqual(['creating item 42 failed']);
  });
});
