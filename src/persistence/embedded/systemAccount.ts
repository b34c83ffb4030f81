/**
 * The operating-system account PostgreSQL runs as when this process is root, since PostgreSQL
 * refuses to run as root. The name is `postgres`, the account every Debian-like system uses.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { StartupError } from '../../errors.js';
import { describeError, fileExists } from './files.js';

export type Account = { readonly name: string; readonly uid: number; readonly gid: number };

export const systemAccountName = 'postgres';

const execFileAsync = promisify(execFile);

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function lookUpAccount(name: string): Promise<Account | undefined> {
  try {
    const [user, group] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    const uid = Number.parseInt(user.stdout, 10);
    const gid = Number.parseInt(group.stdout, 10);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
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
export async function ensureSystemAccount(log: (line: string) => void): Promise<Account> {
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
    throw new StartupError(
      `PostgreSQL cannot run as root and the system user "${systemAccountName}" could not be created ` +
        `(${failures.join('; ')}). Create it manually, for example with ` +
        `"groupadd --system postgres && useradd --system --gid postgres --no-create-home postgres".`,
    );
  }
  return created;
}
