/**
 * The project's folder (the one holding package.json), where the files that ship beside the
 * code live: `sql/` migrations and the dashboard's `public/` assets. The code runs from `src/`
 * under tsx and from `dist/src/` when compiled, so the folder is found by looking upwards.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function projectFolder(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`cannot find the project folder (package.json) above ${fileURLToPath(import.meta.url)}`);
    directory = parent;
  }
  return directory;
}
