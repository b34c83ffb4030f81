import { describe, expect, it } from 'vitest';
import { ConfigurationError } from './errors.js';
import { defaultLimits, defaultShards, parseConfig, rehearsalBuyersDefault } from './config.js';

const secret = () => 'generated';

describe('configuration', () => {
  it('falls back to the defaults of the wire contract', () => {
    const config = parseConfig({}, secret);
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: undefined,
      dataDirectory: './.seckill',
      jwtSecret: 'generated',
      jwtSecretGenerated: true,
      adminToken: 'generated',
      adminTokenGenerated: true,
      inventoryDatabaseUrls: [],
      orderDatabaseUrls: [],
      orderTablesPerDatabase: 8,
      orderHistoryAfterMs: 90 * 24 * 3_600_000,
      orderHistoryBatchRows: 1_000,
      limits: defaultLimits,
      rehearsalBuyers: rehearsalBuyersDefault,
    });
    expect(rehearsalBuyersDefault).toBe(4_000);
    expect(parseConfig({ SECKILL_REHEARSAL_BUYERS: '0' }, secret).rehearsalBuyers).toBe(0);
  });

  it('reads the order databases and their shape', () => {
    const config = parseConfig(
      {
        SECKILL_ORDER_DATABASE_URLS: 'postgres://u:p@orders0/o, postgres://u:p@orders1/o',
        SECKILL_ORDER_TABLES_PER_DATABASE: '64',
        SECKILL_ORDER_HISTORY_AFTER_DAYS: '30',
        SECKILL_ORDER_HISTORY_BATCH_ROWS: '500',
      },
      secret,
    );
    expect(config).toMatchObject({
      orderDatabaseUrls: ['postgres://u:p@orders0/o', 'postgres://u:p@orders1/o'],
      orderTablesPerDatabase: 64,
      orderHistoryAfterMs: 30 * 24 * 3_600_000,
      orderHistoryBatchRows: 500,
    });
  });

  it('reads what is set', () => {
    const config = parseConfig(
      {
        PORT: '9000',
        HOST: '0.0.0.0',
        DATABASE_URL: 'postgres://u:p@db/seckill',
        SECKILL_INVENTORY_DATABASE_URLS: 'postgres://u:p@db2/inventory2',
        SECKILL_JWT_SECRET: 'a-jwt-secret-of-at-least-32-bytes',
        SECKILL_ADMIN_TOKEN: 'admin',
        SECKILL_SHARDS: '3',
      },
      secret,
    );
    expect(config).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      databaseUrl: 'postgres://u:p@db/seckill',
      inventoryDatabaseUrls: ['postgres://u:p@db2/inventory2'],
      jwtSecret: 'a-jwt-secret-of-at-least-32-bytes',
      jwtSecretGenerated: false,
      adminToken: 'admin',
      shards: 3,
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ SECKILL_SHARDS: '-1' }, 'SECKILL_SHARDS'],
    [{ SECKILL_INVENTORY_DATABASE_URLS: 'postgres://u:p@db2/x' }, 'SECKILL_INVENTORY_DATABASE_URLS'],
    [{ SECKILL_ORDER_DATABASE_URLS: 'http://orders' }, 'SECKILL_ORDER_DATABASE_URLS'],
    [{ SECKILL_ORDER_TABLES_PER_DATABASE: '0' }, 'SECKILL_ORDER_TABLES_PER_DATABASE'],
    [{ SECKILL_ORDER_TABLES_PER_DATABASE: '101' }, 'SECKILL_ORDER_TABLES_PER_DATABASE'],
    [{ SECKILL_ORDER_HISTORY_AFTER_DAYS: '0' }, 'SECKILL_ORDER_HISTORY_AFTER_DAYS'],
    [{ SECKILL_ORDER_HISTORY_BATCH_ROWS: 'many' }, 'SECKILL_ORDER_HISTORY_BATCH_ROWS'],
    [{ SECKILL_DATABASE_WAIT_MS: 'soon' }, 'SECKILL_DATABASE_WAIT_MS'],
    [{ SECKILL_REHEARSAL_BUYERS: '-1' }, 'SECKILL_REHEARSAL_BUYERS'],
    [{ SECKILL_REHEARSAL_BUYERS: '100001' }, 'SECKILL_REHEARSAL_BUYERS'],
  ])('refuses %j, naming %s', (environment, name) => {
    expect(() => parseConfig(environment, secret)).toThrow(ConfigurationError);
    expect(() => parseConfig(environment, secret)).toThrow(name);
  });

  it.each([
    [1, 0],
    [2, 0],
    [4, 2],
    [16, 14],
  ])('on %i cores runs %i shard workers unless told', (cores, shards) => {
    expect(defaultShards(cores)).toBe(shards);
  });

  it('refuses a JWT secret shorter than the 32 bytes HS256 needs, and says how to make one', () => {
    expect(() => parseConfig({ SECKILL_JWT_SECRET: 'short' }, secret)).toThrow(
      'SECKILL_JWT_SECRET must be at least 32 bytes for HS256, got 5; generate one with `openssl rand -base64 32`',
    );
    // Bytes, not characters: 16 two-byte characters are 32 bytes.
    expect(parseConfig({ SECKILL_JWT_SECRET: 'é'.repeat(16) }, secret).jwtSecret).toBe('é'.repeat(16));
    expect(() => parseConfig({ SECKILL_JWT_SECRET: 'x'.repeat(31) }, secret)).toThrow('got 31');
  });

  it('waits 60 s for the database unless told', () => {
    expect(parseConfig({}, secret).databaseWaitMs).toBe(60_000);
    expect(parseConfig({ SECKILL_DATABASE_WAIT_MS: '0' }, secret).databaseWaitMs).toBe(0);
  });
});
