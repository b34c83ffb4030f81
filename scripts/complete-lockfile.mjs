// Adds to package-lock.json the entries npm leaves out for optional dependencies it could not
// fetch, so that `npm ci` accepts the lock file.
//
// Why: a registry mirror that serves only this platform's packages (the build machines' does)
// answers 404 for, say, @rollup/rollup-android-arm64. npm then writes the parent's
// `optionalDependencies` but no entry for the package itself, and `npm ci` refuses the lock
// ("Missing: … from lock file"). An entry with the name, the version and `optional: true` is
// all `npm ci` needs: on a platform the package is for, npm fetches it and checks it there.
//
// Run after changing dependencies:  npm install && node scripts/complete-lockfile.mjs && npm install
// `.ci/run` checks the lock with `npm ci --dry-run`, so a lock that drifts again fails CI.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages ?? {};
const added = [];
for (const [location, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${location === '' ? '' : `${location}/`}node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (packages[nested] !== undefined || packages[hoisted] !== undefined) continue;
    packages[hoisted] = { version, dev: entry.dev === true ? true : undefined, optional: true };
    added.push(`${name}@${version}`);
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added.length === 0 ? 'package-lock.json: nothing missing' : `package-lock.json: added ${added.join(', ')}`);
