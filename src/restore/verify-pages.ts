/**
 * The CRC of every VMA's page data, checked without copying it (the file is
 * mapped), on the engine's thread while the first process reads its pages in
 * (its preadv runs on another core meanwhile: `meanwhile`), or at `wait()` if
 * none did. Restore waits for the verdict before it lets the process run.
 * (Images of 48 MiB and more were checked on a helper thread until
 * 2026-11-27: booting it cost more than it gave. Interleaved CLI restores to
 * tmpfs, wall medians: 64 MiB 189 -> 175 ms, 256 MiB 339 -> 317 ms, 1 GiB
 * 1170 -> 932 ms.)
 */
import { CkptError } from '../errors.js';
import { checkPageCrcs, type PageCheck } from './page-crc.js';

export interface PendingVerdict {
  /** Work for the engine's thread while a process of the tree works: it never throws. */
  meanwhile?(): void;
  wait(): void;
}

export function verifyPagesAsync(path: string, fd: number, checks: PageCheck[]): PendingVerdict {
  let verdict: { bad: number } | { error: unknown } | undefined;
  const check = () => {
    if (verdict) return;
    try { verdict = { bad: checkPageCrcs(fd, checks) }; } catch (e) { verdict = { error: e }; }
  };
  return {
    meanwhile: check,
    wait() {
      check();
      if ('error' in verdict!) throw verdict.error;
      if (verdict!.bad >= 0) throw crcError(path, checks[verdict!.bad]);
    },
  };
}

function crcError(path: string, c: PageCheck): CkptError {
  return new CkptError('BAD_IMAGE', `bad image ${path}: page data at offset ${c.offset} (${c.what}) fails its CRC`, { offset: c.offset });
}
