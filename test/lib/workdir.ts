import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];

/** A fresh empty directory under the system temp dir, removed by removeWorkDirs(). */
export function makeWorkDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ckpt-e2e-${label}-`));
  created.push(dir);
  return dir;
}

/** Removes every directory makeWorkDir() made. CKPT_TEST_KEEP=1 keeps them for a post-mortem. */
export function removeWorkDirs(): void {
  const dirs = created.splice(0);
  if (process.env.CKPT_TEST_KEEP === '1') {
    for (const dir of dirs) console.log(`kept ${dir}`);
    return;
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
