import { killAll } from './processes.js';
import { removeWorkDirs } from './workdir.js';

/** Kills every tracked process, then removes every work dir. For node:test `after`. */
export async function cleanup(): Promise<void> {
  try {
    await killAll();
  } finally {
    removeWorkDirs();
  }
}
