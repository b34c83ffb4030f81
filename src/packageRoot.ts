/**
 * The folder that holds seckill's own `package.json`: the checkout, or `node_modules/seckill`
 * where the package is installed. Modules run from `src/` under tsx and from `dist/src/` when
 * compiled, at different depths, so the folder is found by looking upwards.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`cannot find seckill's package.json above ${fileURLToPath(import.meta.url)}`);
    directory = parent;
  }
  return directory;
}
