/**
 * One error class for everything ckpt reports. `code` is stable (programs may
 * switch on it); the message is one line meant for a person.
 */
export type ErrorCode =
  | 'SYSCALL'          // a syscall failed; errno/syscall/pid say which
  | 'ESRCH_PID'        // the pid does not exist (or vanished)
  | 'BAD_PID'          // a pid ckpt will not touch (kernel thread, itself, ...)
  | 'PID_IN_USE'       // restore: a saved pid is taken
  | 'UNSUPPORTED'      // a process state ckpt cannot save yet
  | 'UNSUPPORTED_FD'   // an fd kind ckpt cannot save yet
  | 'BAD_IMAGE'        // the image is missing, truncated, corrupt or forged
  | 'IMAGE_EXISTS'     // dump into a directory that already holds an image
  | 'NO_IMAGE'         // restore/show of a directory that holds no image
  | 'CPU_MISMATCH'     // the image needs CPU features this machine lacks
  | 'FILE_CHANGED'     // a file the image refers to changed or vanished
  | 'USAGE'            // bad command-line arguments
  | 'PERMISSION'       // missing capability or access
  | 'INTERRUPTED'      // a signal to ckpt (or an abort) stopped the operation; nothing was changed
  | 'INTERNAL';

export interface ErrorData {
  pid?: number;
  syscall?: string;
  errno?: number;
  errnoName?: string;
  resource?: string;
  offset?: number;
  path?: string;
  /** INTERRUPTED: the signal that stopped ckpt. */
  signal?: number;
}

export class CkptError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;
  constructor(code: ErrorCode, message: string, data: ErrorData = {}) {
    super(message);
    this.name = 'CkptError';
    this.code = code;
    this.data = data;
  }
}

export function isCkptError(e: unknown): e is CkptError {
  return e instanceof CkptError;
}
