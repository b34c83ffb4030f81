/**
 * What every HTTP route of the server shares: JSON replies, the abort bookkeeping uWebSockets.js
 * requires for replies given after the handler returned, bounded JSON bodies, the admin check,
 * and the wrapper that turns a bug in a handler into a 500 instead of a hanging request.
 *
 * uWebSockets.js forbids touching a response after the client went away or after it was
 * answered; every reply goes through `json` (or checks `canAnswer` itself), which enforces both.
 */
import { Buffer } from 'node:buffer';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { bearerToken, secretsEqual } from '../edge/auth.js';

export type RouteHandler = (response: HttpResponse, request: HttpRequest) => void;

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  409: '409 Conflict',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function statusLine(status: number): string {
  return statusLines[status] ?? `${status}`;
}

/** Wraps a handler so that a bug in it is answered 500 rather than leaving the request hanging. */
export function guarded(logger: Logger, handler: RouteHandler): RouteHandler {
  return (response, request) => {
    try {
      handler(response, request);
    } catch (error) {
      logger.error({ err: error, url: request.getUrl() }, 'an HTTP handler failed');
      json(response, 500, { error: 'internal' });
    }
  };
}

export function json(response: HttpResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (!canAnswer(response)) return;
  markAnswered(response);
  const text = JSON.stringify(body);
  response.cork(() => {
    response.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
    for (const [name, value] of Object.entries(headers)) response.writeHeader(name, value);
    response.end(text);
  });
}

/** True while the client is still there and nothing has answered it yet. */
export function canAnswer(response: HttpResponse): boolean {
  return !isAborted(response) && !isAnswered(response);
}

export function markAnswered(response: HttpResponse): void {
  (response as { answered?: boolean }).answered = true;
}

/** Marks the response aborted when the client goes away, as uWebSockets.js requires for async replies. */
export function watchAbort(response: HttpResponse): void {
  response.onAborted(() => {
    (response as { aborted?: boolean }).aborted = true;
  });
}

export function isAborted(response: HttpResponse): boolean {
  return (response as { aborted?: boolean }).aborted === true;
}

function isAnswered(response: HttpResponse): boolean {
  return (response as { answered?: boolean }).answered === true;
}

/** True when the request carries `Authorization: Bearer <the admin token>`. */
export function isAdmin(request: HttpRequest, adminToken: string): boolean {
  const token = bearerToken(request.getHeader('authorization'));
  return token !== null && secretsEqual(token, adminToken);
}

/**
 * Reads a JSON body of at most `bodyBytesMax` bytes and hands it to `handle`. A body that is
 * too large or not JSON gets 400 `invalid`; a failure inside `handle` gets 503.
 */
export function readJson(
  response: HttpResponse,
  request: HttpRequest,
  options: { readonly bodyBytesMax: number; readonly logger: Logger },
  handle: (body: unknown) => Promise<void>,
): void {
  const limit = options.bodyBytesMax;
  const declared = Number(request.getHeader('content-length') || '0');
  if (declared > limit) {
    json(response, 400, { error: 'invalid', message: `the body is larger than ${limit} bytes` });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  response.onData((chunk, isLast) => {
    if (refused) return;
    size += chunk.byteLength;
    if (size > limit) {
      refused = true;
      json(response, 400, { error: 'invalid', message: `the body is larger than ${limit} bytes` });
      return;
    }
    // uWebSockets.js reuses the chunk's memory after this callback returns.
    chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
    if (!isLast) return;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      json(response, 400, { error: 'invalid', message: 'the body is not JSON' });
      return;
    }
    handle(body).catch((error: unknown) => {
      options.logger.error({ err: error }, 'an admin request failed');
      json(response, 503, { error: 'unavailable', message: 'the request could not be completed; retry later' });
    });
  });
}
