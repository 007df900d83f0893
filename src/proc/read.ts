import { readFileSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { CkptError } from '../errors.js';

/**
 * The few ways readers touch /proc/PID/...; each turns a failure into a CkptError.
 * ENOENT/ESRCH mean the process is gone, unless /proc/PID is still there: then the
 * thing under it (an fd, a tid) is what is missing, and that is a SYSCALL error.
 */
export function procPath(pid: number, rel: string): string {
  return `/proc/${pid}/${rel}`;
}

export function readProcText(pid: number, rel: string): string {
  return onProc(pid, rel, 'open', (p) => readFileSync(p, 'utf8'));
}

export function readProcBuffer(pid: number, rel: string): Buffer {
  return onProc(pid, rel, 'open', (p) => readFileSync(p));
}

export function readProcLink(pid: number, rel: string): string {
  return onProc(pid, rel, 'readlink', (p) => readlinkSync(p));
}

export function readProcDir(pid: number, rel: string): string[] {
  return onProc(pid, rel, 'open', (p) => readdirSync(p));
}

function onProc<T>(pid: number, rel: string, syscall: string, fn: (path: string) => T): T {
  const path = procPath(pid, rel);
  try {
    return fn(path);
  } catch (e) {
    throw procError(e, pid, syscall, path);
  }
}

export function procError(e: unknown, pid: number, syscall: string, path: string): CkptError {
  const err = e as NodeJS.ErrnoException;
  const name = err.code ?? 'EIO';
  // node names readdir failures 'scandir'; keep ours unless the read itself failed
  const call = err.syscall === 'read' ? 'read' : syscall;
  if (name === 'ESRCH' || (name === 'ENOENT' && !existsSync(`/proc/${pid}`))) {
    return new CkptError('ESRCH_PID', `no process ${pid}`, { pid });
  }
  return new CkptError('SYSCALL', `${name}: ${call} ${path} failed, pid ${pid}`, {
    pid,
    syscall: call,
    errno: err.errno === undefined ? undefined : Math.abs(err.errno),
    errnoName: name,
    path,
  });
}
