/**
 * Starts the real server for end-to-end tests: a database of its own on the test run's
 * PostgreSQL (createTestDatabase), the engine on it, and the server on an ephemeral port of
 * 127.0.0.1. Helpers mint user tokens, call the HTTP routes and open WebSocket clients.
 */
import { SignJWT } from 'jose';
import type { Clock } from '../../src/clock.js';
import type { EdgeLimits } from '../../src/config.js';
import { createEngine, type Engine, type EngineOptions, type ItemView } from '../../src/engine.js';
import { Metrics } from '../../src/metrics.js';
import { startServer, type SeckillServer } from '../../src/server.js';
import { createTestDatabase } from '../support/testDatabase.js';
import { TestClient } from './client.js';

export const jwtSecret = 'end-to-end-test-secret-of-at-least-32-bytes';
export const adminToken = 'end-to-end-admin-token';

export interface TokenClaims {
  readonly level?: number;
  readonly tags?: string[];
  /** Seconds since the epoch, as in the JWT. */
  readonly exp?: number;
}

export interface HttpReply {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly contentType: string | null;
}

export interface HarnessOptions {
  readonly databaseUrl?: string;
  readonly limits?: Partial<EdgeLimits>;
  readonly clock?: Clock;
  readonly engine?: Omit<EngineOptions, 'databaseUrl' | 'onFlush' | 'onProjection'>;
}

export class Harness {
  engine!: Engine;
  server!: SeckillServer;
  metrics!: Metrics;
  private readonly clients: TestClient[] = [];
  private itemCounter = 1_000;

  constructor(
    readonly databaseUrl: string,
    private readonly options: HarnessOptions,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const databaseUrl = options.databaseUrl ?? (await createTestDatabase('e2e')).url;
    const harness = new Harness(databaseUrl, options);
    await harness.boot();
    return harness;
  }

  get httpUrl(): string {
    return this.server.httpUrl;
  }

  async boot(): Promise<void> {
    this.metrics = new Metrics();
    this.engine = await createEngine({
      ...this.options.engine,
      clock: this.options.clock,
      databaseUrl: this.databaseUrl,
      onFlush: this.metrics.flush,
      onProjection: this.metrics.projection,
    });
    this.server = await startServer({
      engine: this.engine,
      jwtSecret,
      adminToken,
      limits: this.options.limits,
      clock: this.options.clock,
      metrics: this.metrics,
    });
  }

  /** Stops the server and the engine, then starts both again on the same database. */
  async restart(): Promise<void> {
    await this.stop();
    await this.boot();
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((client) => client.close()));
    await this.server.close(5_000);
    await this.engine.close();
  }

  token(userId: string, claims: TokenClaims = {}, secret = jwtSecret): Promise<string> {
    const { exp, ...rest } = claims;
    const builder = new SignJWT(rest).setProtectedHeader({ alg: 'HS256' }).setSubject(userId);
    if (exp !== undefined) builder.setExpirationTime(exp);
    return builder.sign(new TextEncoder().encode(secret));
  }

  async connect(userId: string, claims: TokenClaims = {}): Promise<TestClient> {
    return this.connectWithToken(await this.token(userId, claims));
  }

  async connectWithToken(token: string): Promise<TestClient> {
    const client = await TestClient.connect(`${this.server.wsUrl}?token=${encodeURIComponent(token)}`);
    this.clients.push(client);
    return client;
  }

  async http(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<HttpReply> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${this.server.httpUrl}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text, contentType: response.headers.get('content-type') };
  }

  admin(method: string, path: string, body?: unknown): Promise<HttpReply> {
    return this.http(method, path, { token: adminToken, body });
  }

  /** A fresh item id for this harness's database. */
  itemId(): string {
    this.itemCounter += 1;
    return String(this.itemCounter);
  }

  /** Creates an item through POST /admin/items; the body's defaults are a fresh id, seller 7 and 10 units. */
  async createItem(body: Record<string, unknown> = {}): Promise<ItemView> {
    const reply = await this.admin('POST', '/admin/items', { id: this.itemId(), name: 'Phone', sellerId: '7', stock: 10, ...body });
    if (reply.status !== 201) throw new Error(`creating an item failed: ${reply.status} ${reply.text}`);
    return reply.body as ItemView;
  }
}

/** Solves an arithmetic challenge prompt such as "What is 12 + 7?". */
export function solve(prompt: string): number {
  const match = /(-?\d+)\s*([-+*])\s*(-?\d+)/.exec(prompt);
  if (match === null) throw new Error(`cannot read the challenge ${prompt}`);
  const left = Number(match[1]);
  const right = Number(match[3]);
  return match[2] === '+' ? left + right : match[2] === '-' ? left - right : left * right;
}
