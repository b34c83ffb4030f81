/**
 * What the parts of the server share: the engine, the limits, the clock, the logger, the
 * metrics, the credentials, whether the server still accepts work, and the count of requests
 * in flight. The lifecycle (lifecycle.ts) builds one and hands it to the routes and the
 * WebSocket sessions.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { EdgeLimits } from '../config.js';
import type { UserAuthenticator } from '../edge/auth.js';
import type { Engine } from '../engine.js';
import type { Metrics } from '../metrics.js';
import type { InFlightRequests } from './inFlight.js';

export interface ServerContext {
  readonly engine: Engine;
  readonly limits: EdgeLimits;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly auth: UserAuthenticator;
  readonly adminToken: string;
  readonly inFlight: InFlightRequests;
  /** Closed once shutdown began: new connections get 503 and new requests `unavailable`. */
  readonly admission: Admission;
}

/**
 * Whether the server still accepts work. A class rather than a closure made per server: every
 * frame asks it, and V8 compiles that call for the one function it has seen, so a closure of
 * the rehearsing server (src/server/rehearsal.ts) made the real server's first frames throw
 * the compiled frame path away ("wrong call target" in `--trace-deopt`).
 */
export class Admission {
  private open = true;

  get accepting(): boolean {
    return this.open;
  }

  close(): void {
    this.open = false;
  }
}
