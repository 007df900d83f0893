/**
 * The library API: dump(), restore(), readImage(), check().
 * Promise-based; every failure is a CkptError with a stable `code`.
 */
import { dumpSync, type DumpOptions, type DumpResult } from './dump/dump.js';
import { restoreSync, waitForExit, type RestoreOptions, type RestoreResult } from './restore/restore.js';
import { showImage, type ImageJson } from './show.js';
import { checkKernel, type CheckResult } from './check.js';

export { CkptError, isCkptError, type ErrorCode, type ErrorData } from './errors.js';
export type { DumpOptions, DumpResult, RestoreOptions, RestoreResult, ImageJson, CheckResult };

export async function dump(opts: DumpOptions): Promise<DumpResult> {
  return dumpSync(opts);
}

export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  return restoreSync(opts);
}

/** Wait until a restored process (started without detach) exits; returns its status. */
export async function waitRestored(pid: number): Promise<number> {
  return waitForExit(pid);
}

export async function readImage(dir: string): Promise<ImageJson> {
  return showImage(dir);
}

export async function check(): Promise<CheckResult> {
  return checkKernel();
}
