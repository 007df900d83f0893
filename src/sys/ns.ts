/**
 * Namespaces from ckpt's own side: setns of the calling thread into another
 * process's uts or ipc namespace for the length of one function, and uname.
 *
 * setns(CLONE_NEWUTS / CLONE_NEWIPC / CLONE_NEWNET) moves only the calling
 * thread, and the kernel allows it in a multi-threaded process (unlike the
 * mount and user namespaces), so the engine's thread can step in and out
 * while node's other threads stay where they are.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { allocNative, syscall, type NativeMemory } from './libc.js';
import { NR } from './nr.js';
import { CLONE } from './constants.js';

/** The namespace kinds a thread can enter and leave on its own. */
export type ThreadNsKind = 'uts' | 'ipc';
const NS_FLAG: Record<ThreadNsKind, number> = { uts: CLONE.NEWUTS, ipc: CLONE.NEWIPC };

export function setns(fd: number, nstype: number, what: string): void {
  syscall(NR.setns, [fd, nstype], { what: `setns(${what})` });
}

/**
 * Run `fn` with the calling thread in the `kind` namespace of `pid`, and put
 * the thread back into its own one afterwards, whatever happens. Failing to
 * get back is fatal for the thread's later work, so it is an INTERNAL error.
 */
export function inNamespaceOf<R>(pid: number, kind: ThreadNsKind, fn: () => R): R {
  const own = fs.openSync(`/proc/thread-self/ns/${kind}`, 'r');
  let theirs: number | undefined;
  try {
    try {
      theirs = fs.openSync(`/proc/${pid}/ns/${kind}`, 'r');
    } catch (e) {
      throw new CkptError('ESRCH_PID', `pid ${pid}: cannot open its ${kind} namespace: ${(e as Error).message}`, { pid });
    }
    const flag = NS_FLAG[kind];
    try {
      setns(theirs, flag, `${kind} namespace of pid ${pid}`);
    } catch (e) {
      if (e instanceof CkptError) e.data.pid = pid;
      throw e;
    }
    try {
      return fn();
    } finally {
      try {
        setns(own, flag, `back to ckpt's own ${kind} namespace`);
      } catch (e) {
        // eslint-disable-next-line no-unsafe-finally
        throw new CkptError('INTERNAL', `ckpt could not return to its own ${kind} namespace: ${(e as Error).message}`);
      }
    }
  } finally {
    if (theirs !== undefined) fs.closeSync(theirs);
    fs.closeSync(own);
  }
}

let unameBuf: NativeMemory | undefined;
const UTS_LEN = 65;

function cString(buf: Buffer, at: number, max: number): string {
  const s = buf.subarray(at, at + max);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? max : nul).toString('utf8');
}

/** uname(2) of the calling thread's uts namespace: the two names a namespace owns. */
export function utsNames(): { hostname: string; domainname: string } {
  unameBuf ??= allocNative(6 * UTS_LEN);
  syscall(NR.uname, [unameBuf.addr], { what: 'uname' });
  return { hostname: cString(unameBuf.buf, 1 * UTS_LEN, UTS_LEN), domainname: cString(unameBuf.buf, 5 * UTS_LEN, UTS_LEN) };
}
