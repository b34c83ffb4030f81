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
  /** False once shutdown began: new connections get 503 and new requests `unavailable`. */
  isAccepting(): boolean;
}
