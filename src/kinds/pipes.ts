/**
 * Pipes whose ends are in the dumped tree. The bytes in flight are read
 * without consuming them (tee into a pipe of ckpt's own) and written back
 * into a fresh pipe at restore. One PIPE record per pipe, by inode; FD
 * records of kind PIPE point to it by that inode. A pipe whose other end is
 * closed everywhere (a shell reading what a command substitution's child
 * wrote, after it exited) is saved too: at restore no process takes that end,
 * and ckpt closes its own.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { F, O } from '../sys/constants.js';
import { close, fcntl, pidfdGetfd, pidfdOpen, pipe2, pollNow, tryTee } from '../sys/syscalls.js';
import { E } from '../sys/errno.js';
import { T } from './ids.js';

export const PIPE = defineRecord({
  type: T.PIPE, name: 'pipe', content: Content.DATA, fields: { ino: 'u64', size: 'u32', bytes: 'u32' },
});
export type PipeFields = FieldsOf<typeof PIPE>;
export interface SavedPipe { fields: PipeFields; data: Buffer }

const SPLICE_F_NONBLOCK = 2;

const POLLERR = 0x8, POLLHUP = 0x10;

/**
 * The pipe's buffer size and the bytes it holds, read without consuming them.
 * `lone`: the tree holds only read ends, or only write ends, of this pipe. It
 * is saved only if the other end is closed everywhere (poll says POLLHUP on a
 * read end when no writer is left, POLLERR on a write end when no reader is),
 * and undefined comes back if it is open outside the tree. A pipe with no
 * reader left holds bytes nobody reads: none are saved.
 */
export function dumpPipe(pid: number, fd: number, ino: bigint): SavedPipe;
export function dumpPipe(pid: number, fd: number, ino: bigint, lone: 'read' | 'write' | undefined): SavedPipe | undefined;
export function dumpPipe(pid: number, fd: number, ino: bigint, lone?: 'read' | 'write'): SavedPipe | undefined {
  const pidfd = pidfdOpen(pid);
  let theirs = -1;
  try {
    theirs = pidfdGetfd(pidfd, fd, pid);
    if (lone && (pollNow(theirs, 0) & (lone === 'read' ? POLLHUP : POLLERR)) === 0) return undefined;
    const size = fcntl(theirs, F.GETPIPE_SZ);
    const data = lone === 'write' ? Buffer.alloc(0) : bytesInFlight(pid, fd, theirs, size);
    return { fields: { ino, size, bytes: data.length }, data };
  } finally {
    if (theirs >= 0) close(theirs);
    close(pidfd);
  }
}

/** What the pipe whose read end is `readEnd` (ckpt's dup of fd `fd` of `pid`) holds: tee'd into a pipe of ckpt's own. */
function bytesInFlight(pid: number, fd: number, readEnd: number, size: number): Buffer {
  const [r, w] = pipe2(O.CLOEXEC | O.NONBLOCK);
  try {
    fcntl(w, F.SETPIPE_SZ, size);
    const n = tryTee(readEnd, w, size, SPLICE_F_NONBLOCK);
    if (n < 0 && n !== -E.EAGAIN) throw new CkptError('SYSCALL', `tee of the pipe at fd ${fd} of pid ${pid} failed: errno ${-n}`, { pid, syscall: 'tee' });
    const data = Buffer.alloc(Math.max(n, 0));
    let got = 0;
    while (got < data.length) got += fs.readSync(r, data, got, data.length - got, null);
    return data;
  } finally {
    close(r);
    close(w);
  }
}

/** A fresh pipe holding the saved bytes; returns [read end, write end] in ckpt. */
export function createPipe(p: SavedPipe): [number, number] {
  const [r, w] = pipe2(O.CLOEXEC | O.NONBLOCK);
  try {
    if (p.fields.size) fcntl(w, F.SETPIPE_SZ, p.fields.size);
    let done = 0;
    while (done < p.data.length) done += fs.writeSync(w, p.data, done, p.data.length - done);
    fcntl(r, F.SETFL, 0);
    fcntl(w, F.SETFL, 0);
    return [r, w];
  } catch (e) {
    close(r);
    close(w);
    throw e;
  }
}
