import { assertPass } from './assertions.js';
import { startProgram } from './processes.js';
import { compile } from './programs.js';
import { requestCheck, waitReady } from './protocol.js';
import { makeWorkDir } from './workdir.js';

/** Starts test/programs/NAME.c in a fresh work dir and waits until it has PASSed a first check. */
export async function startChecked(name: string, args: string[] = [], cflags: string[] = []): Promise<{ dir: string; pid: number }> {
  const dir = makeWorkDir(name);
  const { pid } = startProgram(compile(name, cflags), [dir, ...args]);
  await waitReady(dir, { pid });
  assertPass(await requestCheck(dir));
  return { dir, pid };
}
