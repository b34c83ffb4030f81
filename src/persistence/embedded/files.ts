/** Small file-system and error helpers shared by the embedded PostgreSQL modules. */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';

export async function statIfExists(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    // ENOTDIR: a parent is a file; whoever creates the path next reports it.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

export async function fileExists(file: string): Promise<boolean> {
  return (await statIfExists(file)) !== undefined;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error === undefined) return 'unknown error';
  return String(error);
}
