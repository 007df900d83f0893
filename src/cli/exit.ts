import type { ErrorCode } from '../errors.js';

/** Documented exit codes (README "Exit codes"). */
export const EXIT: Record<ErrorCode, number> = {
  USAGE: 2,
  ESRCH_PID: 3, BAD_PID: 3,
  PID_IN_USE: 4,
  UNSUPPORTED: 5, UNSUPPORTED_FD: 5,
  BAD_IMAGE: 6, NO_IMAGE: 6, IMAGE_EXISTS: 6,
  CPU_MISMATCH: 7, FILE_CHANGED: 7,
  PERMISSION: 8,
  SYSCALL: 1, INTERNAL: 70,
  INTERRUPTED: 130,
};

export function exitCodeOf(code: ErrorCode): number { return EXIT[code] ?? 1; }
