/**
 * The HTTP and WebSocket server of shared/PROTOCOL.md, on uWebSockets.js: a thin adapter over
 * the engine. It parses, validates, authenticates, rate-limits, routes and replies; every
 * business decision (stock, limits, sale window, eligibility, blocklist, tokens) is the
 * engine's. The edge filters that need no database live in src/edge/: the JWT check, the
 * arithmetic challenge, the rate limits and the coalescing of stock pushes.
 *
 * What it promises:
 * - `reserved`, `order` and `released` are sent only when the engine's promise resolves, which
 *   is after the change committed to PostgreSQL.
 * - Every request frame gets exactly one reply (or the connection is closed with a documented
 *   code, see `closeCodes`). A malformed frame is answered `invalid` and the connection stays.
 * - A slow reader never slows anyone else (see server/webSocket.ts).
 * - Reads (GET /items/:id, stock pushes) come from the engine's memory, never the database.
 *
 * The parts, in src/server/: lifecycle.ts (start, listen, shutdown), webSocket.ts (sessions at
 * /ws), dispatch.ts (what each request does), connection.ts (replies and flow control),
 * operationalRoutes.ts, userRoutes.ts, adminRoutes.ts, and http.ts (what the routes share).
 */
export { startServer, type SeckillServer, type ServerOptions } from './server/lifecycle.js';
