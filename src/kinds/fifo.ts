/**
 * Named FIFOs: an fd whose file is S_IFIFO with a path. Each end is reopened
 * by path with its own flags. The bytes in flight are saved once per FIFO,
 * from an end the process can read (tee, like pipes.ts): with only write
 * ends inside, the bytes belong to a reader outside and stay in the kernel.
 *
 * Restore opens a keeper end O_RDWR|O_NONBLOCK first, so that opening a lone
 * read end does not wait for a writer and a lone write end does not fail
 * with ENXIO. The saved bytes are written through the keeper, unless the
 * FIFO already holds bytes: then a process outside kept it open since the
 * dump, and the bytes never left.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { F, O } from '../sys/constants.js';
import { close, fcntl } from '../sys/syscalls.js';
import { ioctlGetInt, TIOC } from '../sys/tty.js';
import { dumpPipe } from './pipes.js';
import { T } from './ids.js';

/** content: the bytes in flight. On the fd they were read from; `size` is the FIFO's capacity. */
export const FIFO_DATA = defineRecord({ type: T.FIFO_DATA, name: 'fifo_data', content: Content.DATA, fields: { fd: 'u32', size: 'u32', bytes: 'u32' } });
export interface FifoData { fields: FieldsOf<typeof FIFO_DATA>; data: Buffer }

/** What fifo.ts needs of an fd (a SavedFd). */
interface FifoFd { fields: { fd: number; flags: number; dev: bigint; ino: bigint; same_as: number }; path: string; fifo?: FifoData }

/** Save the bytes of every FIFO the process can read, once, on its first readable end (`fds`: the FIFO fds). */
export function dumpFifos(pid: number, fds: FifoFd[]): void {
  const seen = new Set<string>();
  for (const f of fds) {
    if (f.fields.same_as >= 0 || (f.fields.flags & O.ACCMODE) === O.WRONLY) continue;
    const key = `${f.fields.dev}:${f.fields.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const p = dumpPipe(pid, f.fields.fd, f.fields.ino);
    f.fifo = { fields: { fd: f.fields.fd, size: p.fields.size, bytes: p.fields.bytes }, data: p.data };
  }
}

/** Before anything is created: the path is still a FIFO. */
export function checkFifo(fd: number, path: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw new CkptError('FILE_CHANGED', `fd ${fd}: the FIFO ${path} is gone since the dump (${(e as NodeJS.ErrnoException).code})`, { path });
  }
  if (!st.isFIFO()) throw new CkptError('FILE_CHANGED', `fd ${fd}: ${path} is no longer a FIFO`, { path });
}

/** This end of the FIFO, opened in ckpt with the saved flags (and the saved bytes put back). */
export function openFifo(f: FifoFd): number {
  const v = f.fields;
  const reopen = (flags: number) => {
    try {
      return fs.openSync(f.path, flags);
    } catch (e) {
      throw new CkptError('FILE_CHANGED', `fd ${v.fd}: cannot reopen the FIFO ${f.path}: ${(e as NodeJS.ErrnoException).code}`, { path: f.path });
    }
  };
  const keeper = reopen(O.RDWR | O.NONBLOCK | O.CLOEXEC);
  try {
    if (f.fifo && ioctlGetInt(keeper, TIOC.FIONREAD, 'FIONREAD') === 0) {
      const { size } = f.fifo.fields;
      if (size && fcntl(keeper, F.GETPIPE_SZ) !== size) fcntl(keeper, F.SETPIPE_SZ, size);
      let done = 0;
      while (done < f.fifo.data.length) done += fs.writeSync(keeper, f.fifo.data, done, f.fifo.data.length - done);
    }
    const local = reopen((v.flags & ~(O.CREAT | O.EXCL | O.TRUNC)) | O.NONBLOCK | O.NOCTTY | O.CLOEXEC);
    fcntl(local, F.SETFL, v.flags & (O.NONBLOCK | O.APPEND));
    return local;
  } finally {
    close(keeper);
  }
}
