import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: tests run compiled from dist/test/lib/, sources live beside dist/. */
export const REPO_ROOT = findRepoRoot();
export const PROGRAMS_DIR = join(REPO_ROOT, 'test', 'programs');
/** The bundled CLI, as package.json's bin runs it. */
export const CLI = join(REPO_ROOT, 'dist', 'bin', 'ckpt.js');

function findRepoRoot(): string {
  // dist/test/lib/paths.js → ../../../ ; a run straight from test/lib/ (ts loaders) → ../../
  for (const up of ['../../../', '../../']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'programs'))) return dir;
  }
  throw new Error(`cannot find the repository root above ${fileURLToPath(import.meta.url)}`);
}
