/**
 * Loads uWebSockets.js and tells which implementation is running.
 *
 * The package (@trufflesuite/uws-js-unofficial) requires the native binary
 * `binaries/uws_<platform>_<arch>_<node ABI>.node`; when that fails, or when UWS_USE_FALLBACK is
 * set, it silently returns a pure-JavaScript shim built on the `ws` package instead, which is
 * far slower and lacks native pub/sub. Only the native binary registers a `.node` file from the
 * package's `binaries/` folder in the require cache, and only it exports `getParts`; both are
 * checked, so a shim can never pass for the real thing.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export type Uws = typeof import('uWebSockets.js');
export type UwsImplementation = 'native' | 'ws-fallback';

export const uws: Uws = require('uWebSockets.js') as Uws;

export function uwsImplementation(): UwsImplementation {
  const packageRoot = path.dirname(path.dirname(require.resolve('uWebSockets.js')));
  const binaries = path.join(packageRoot, 'binaries') + path.sep;
  const nativeLoaded = Object.keys(require.cache).some((file) => file.startsWith(binaries) && file.endsWith('.node'));
  return nativeLoaded && typeof (uws as { getParts?: unknown }).getParts === 'function' ? 'native' : 'ws-fallback';
}
