/**
 * Listening with the port to ourselves, and saying why when that is refused.
 *
 * uWebSockets.js listens with SO_REUSEPORT by default, so a second server started on a port
 * that is taken would listen beside the first, and the kernel would split the connections
 * between two separate sales. The exclusive option turns that into a refusal. uWebSockets.js
 * reports a refusal only as `false`, so the reason is found by trying the same bind with Node's
 * own socket, which names the error (EADDRINUSE, EADDRNOTAVAIL, EACCES).
 */
import { createServer } from 'node:net';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { uws } from './uws.js';

/** The native option value; the type declarations lack the four-argument overload that takes it. */
const exclusivePort = (uws as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;

type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  callback: (listenSocket: us_listen_socket | false) => void,
) => void;

/** Listens on host:port unless another socket holds the port; rejects with the reason. */
export function listenExclusively(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    (app.listen as unknown as ListenWithOptions).call(app, host, port, exclusivePort, (listenSocket) => {
      if (listenSocket !== false) {
        resolve(listenSocket);
        return;
      }
      void bindFailureReason(host, port).then((reason) => reject(new Error(`cannot listen on ${host}:${port}: ${reason}`)));
    });
  });
}

async function bindFailureReason(host: string, port: number): Promise<string> {
  const code = await new Promise<string | undefined>((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
  switch (code) {
    case 'EADDRINUSE':
      return 'the port is already in use by another program (EADDRINUSE); fix: stop that program, or set PORT to a free port';
    case 'EADDRNOTAVAIL':
      return 'this machine has no such address (EADDRNOTAVAIL); fix: set HOST to one of its addresses, such as 127.0.0.1 or 0.0.0.0';
    case 'EACCES':
      return 'permission denied (EACCES); fix: ports below 1024 need privileges, so set PORT to 1024 or above';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name does not resolve (${code}); fix: set HOST to an address such as 127.0.0.1 or 0.0.0.0`;
    case undefined:
      return 'refused by uWebSockets.js although the address can be bound; fix: try again, or set PORT to another port';
    default:
      return `${code}; fix: check HOST and PORT`;
  }
}
