/** `ckpt run` from tests. */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI } from './paths.js';
import { track } from './processes.js';
import { waitFor } from './wait.js';

/**
 * `ckpt run -d -- ARGV...`, its stdout and stderr into files of `dir` (the
 * container keeps ckpt's stdio, so a pipe would stay open after ckpt exits).
 * Returns the host pid it printed, tracked under `comm`, once /proc shows
 * the command running (comm changed from the seed's).
 */
export async function runDetached(dir: string, argv: string[], comm: string): Promise<number> {
  const out = join(dir, `run-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  const o = openSync(`${out}.out`, 'w');
  const e = openSync(`${out}.err`, 'w');
  let r;
  try {
    r = spawnSync(process.execPath, [CLI, 'run', '-d', '--', ...argv], { stdio: ['ignore', o, e], timeout: 60_000 });
  } finally {
    closeSync(o);
    closeSync(e);
  }
  const stdout = readFileSync(`${out}.out`, 'utf8');
  if (r.status !== 0) throw new Error(`ckpt run -d failed (${r.status}): ${readFileSync(`${out}.err`, 'utf8')}`);
  const pid = Number.parseInt(stdout.split('\n')[0], 10);
  if (!(pid > 1)) throw new Error(`ckpt run -d printed no pid first: ${JSON.stringify(stdout)}`);
  track(pid, comm);
  await waitFor(`pid ${pid} to run ${comm}`, () => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm ? true : undefined;
    } catch {
      return undefined;
    }
  }, 10_000);
  return pid;
}
