import { assertPass } from './assertions.js';
import { startOrphan, startProgram, waitGone } from './processes.js';
import { dumpOk, restoreInBackground, whileRunning, type BackgroundCkpt } from './ckpt.js';
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

/**
 * test/programs/api-mem.c holding `mib` MiB of pseudo-random memory, as an
 * orphan (its parent is a shell that exits at once), once it has PASSed a
 * first check: a process the test's own process may dump (the library,
 * dumpSync), since libuv would take the ptrace stops of a child of its own.
 */
export async function startMemOrphan(mib: number, label = `api-mem${mib}`): Promise<{ dir: string; pid: number }> {
  const dir = makeWorkDir(label);
  const { pid } = startOrphan(compile('api-mem'), [dir, String(mib)]);
  await waitReady(dir, { pid, timeoutMs: 20_000 });
  assertPass(await requestCheck(dir));
  return { dir, pid };
}

/**
 * The round trip most tests make: dump PID (which kills it), wait until its
 * pid is free, restore in the background (ckpt stays its parent) and wait
 * for a PASS. Returns the running restore and that report.
 */
export async function dumpAndRestore(pid: number, dir: string): Promise<{ restore: BackgroundCkpt; report: string }> {
  const image = makeWorkDir('img');
  await dumpOk(pid, image);
  await waitGone(pid);
  const restore = restoreInBackground(image);
  const report = await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 }));
  assertPass(report);
  return { restore, report };
}
