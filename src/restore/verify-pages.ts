/**
 * The CRC of every VMA's page data, checked without copying it (the file is
 * mapped). Large images are checked on a helper thread (src/helper-thread.ts)
 * on the second core while restore goes on; restore waits for its verdict before it lets the
 * process run.
 */
import { startHelperJob } from '../helper-thread.js';
import { CkptError } from '../errors.js';
import { checkPageCrcs, type PageCheck } from './page-crc.js';

export const PARALLEL_MIN_BYTES = 48 * 1024 * 1024;

export interface PendingVerdict { wait(): void }

export function verifyPagesAsync(path: string, fd: number, checks: PageCheck[]): PendingVerdict {
  const total = checks.reduce((n, c) => n + c.len, 0);
  if (total < PARALLEL_MIN_BYTES) {
    const bad = checkPageCrcs(fd, checks);
    if (bad >= 0) throw crcError(path, checks[bad]);
    return { wait() {} };
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
