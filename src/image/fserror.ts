import { CkptError } from '../errors.js';

/** A failed fs call as one CkptError: EACCES/EPERM are PERMISSION, the rest SYSCALL. */
export function fsError(err: unknown, syscall: string, path: string): CkptError {
  const e = err as NodeJS.ErrnoException;
  const errnoName = typeof e?.code === 'string' ? e.code : 'EIO';
  const code = errnoName === 'EACCES' || errnoName === 'EPERM' ? 'PERMISSION' : 'SYSCALL';
  // Node's message is "ENOENT: no such file or directory, open '/x'": keep the middle.
  const text = e instanceof Error ? (/^[A-Z0-9]+: ([^,]*)/.exec(e.message)?.[1] ?? e.message) : String(err);
  return new CkptError(code, `${errnoName}: ${syscall} ${path}: ${text}`, {
    syscall,
    errnoName,
    ...(typeof e?.errno === 'number' ? { errno: -e.errno } : {}),
    path,
  });
}

export function errnoOf(err: unknown): string | undefined {
  const c = (err as NodeJS.ErrnoException)?.code;
  return typeof c === 'string' ? c : undefined;
}
