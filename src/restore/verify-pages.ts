/**
 * The CRC of every VMA's page data, checked without copying it (the file is
 * mapped). Large images are checked on a helper thread (src/helper-thread.ts)
 * on the second core while restore goes on; small ones on the engine's thread
 * while the first process reads its pages in (its preadv runs on another core
 * meanwhile: `meanwhile`), or at `wait()` if none did. Restore waits for the
 * verdict before it lets the process run.
 */
import { startHelperJob } from '../helper-thread.js';
import { CkptError } from '../errors.js';
import { checkPageCrcs, type PageCheck } from './page-crc.js';

export const PARALLEL_MIN_BYTES = 48 * 1024 * 1024;

export interface PendingVerdict {
  /** Work for the engine's thread while a process of the tree works: it never throws. */
  meanwhile?(): void;
  wait(): void;
}

export function verifyPagesAsync(path: string, fd: number, checks: PageCheck[]): PendingVerdict {
  const total = checks.reduce((n, c) => n + c.len, 0);
  if (total < PARALLEL_MIN_BYTES) {
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
  const state = new Int32Array(new SharedArrayBuffer(8)); // [done, bad index or -1]
  state[1] = -1;
  startHelperJob({ kind: 'verify-pages', data: { fd, checks, state: state.buffer } });
  return {
    wait() {
      Atomics.wait(state, 0, 0);
      if (state[0] === 2) throw new CkptError('INTERNAL', `checking ${path} failed in the verifier thread`);
      if (state[1] >= 0) throw crcError(path, checks[state[1]]);
    },
  };
}

function crcError(path: string, c: PageCheck): CkptError {
  return new CkptError('BAD_IMAGE', `bad image ${path}: page data at offset ${c.offset} (${c.what}) fails its CRC`, { offset: c.offset });
}
